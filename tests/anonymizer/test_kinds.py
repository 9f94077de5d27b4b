"""The kind registry (anonymizer/kinds.py) is the one place a record kind is declared: its input
fields and identifier columns are read from the rules, its validator and row builder are the
ones everybody runs, and it holds no HTTP route."""

import subprocess
import sys
from dataclasses import fields
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonymizer.errors import RecordInvalid
from anonymizer.explain import demo_context
from anonymizer.kinds import KIND_NAMES, KINDS, RECORD_TABLES, Kind, KindName
from anonymizer.policy import IDENTIFIER_FIELDS, default_policy
from anonymizer.rules import RULES, input_fields, rules_for
from anonymizer.types import Enrichment
from anonymizer.validate import TimeWindow

WINDOW = TimeWindow.around(1_795_600_000_000, 36500)
REQUIRED = {"access_log": {"ip": "192.0.2.1"}, "device": {"device_id": "d"}, "event": {"event": "e"},
            "mail_scan": {"imb": "01234567094987654321"}}  # fmt: skip


def test_one_object_per_kind_with_a_name_and_a_table() -> None:
    assert tuple(KINDS) == KIND_NAMES == get_args(KindName)
    assert all(k.name == name for name, k in KINDS.items())
    assert len({k.table for k in KINDS.values()}) == len(KINDS)
    assert tuple(k.table for k in KINDS.values()) == RECORD_TABLES
    assert {r.kind for r in RULES} == set(KINDS)  # every kind has rules, every rule a kind


def test_no_http_route_in_the_registry() -> None:
    assert "route" not in {f.name for f in fields(Kind)}
    for kind in KINDS.values():
        values = [getattr(kind, f.name) for f in fields(Kind)]
        assert not [v for v in values if isinstance(v, str) and v.startswith("/")]


@pytest.mark.parametrize("name", KIND_NAMES)
def test_fields_and_identifiers_are_read_from_the_rules(name: KindName) -> None:
    kind = KINDS[name]
    assert kind.fields == frozenset(input_fields(name))
    assert set(kind.required) <= kind.fields
    expected: dict[str, list[str]] = {}
    for r in rules_for(name):
        if r.identifier:
            expected.setdefault(r.identifier, []).extend(r.columns)
    assert {i: list(c) for i, c in kind.identifiers.items()} == expected
    assert set(kind.identifiers) <= set(IDENTIFIER_FIELDS)  # the policy can switch each off


@pytest.mark.parametrize("name", KIND_NAMES)
@given(extra=st.text(min_size=0, max_size=20))
def test_a_field_no_rule_names_is_rejected_by_name(name: KindName, extra: str) -> None:
    kind = KINDS[name]
    raw: dict[str, Any] = {**REQUIRED[name], extra: "x"}
    if extra in kind.fields:
        return
    with pytest.raises(RecordInvalid) as e:
        kind.validate(raw, WINDOW)
    assert (e.value.field, e.value.error) == (extra[:64], "unknown field")


@pytest.mark.parametrize("name", KIND_NAMES)
def test_validate_then_build_gives_a_row_of_the_kinds_table(name: KindName) -> None:
    kind = KINDS[name]
    record = kind.validate(REQUIRED[name], WINDOW)
    row, _ = kind.build(default_policy(), demo_context(record.time_ms), record, Enrichment())
    ruled = {c for r in rules_for(name) for c in r.columns}
    assert row is None or ruled <= set(row)
    with pytest.raises(RecordInvalid) as e:
        kind.validate([REQUIRED[name]], WINDOW)
    assert e.value.error == "record must be a JSON object"


@pytest.mark.parametrize("first", ["anonymizer.kinds", "anonymizer.rules", "anonymizer.explain"])
def test_the_registry_and_the_rules_import_in_any_order(first: str) -> None:
    code = (
        f"import {first}\nfrom anonymizer.kinds import KINDS\n"
        "print(sorted(KINDS['device'].identifiers))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['device_id',", "'user_id']"]


@pytest.mark.parametrize("name", KIND_NAMES)
def test_each_required_field_is_required_by_the_validator(name: KindName) -> None:
    kind = KINDS[name]
    for field in kind.required:
        raw = {k: v for k, v in REQUIRED[name].items() if k != field}
        with pytest.raises(RecordInvalid) as e:
            kind.validate(raw, WINDOW)
        assert (e.value.field, e.value.error) == (field, "is required")
