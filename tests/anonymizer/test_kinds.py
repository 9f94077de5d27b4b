"""The kind registry (anonymizer/kinds.py) is the one place a record kind is declared: its input
fields and identifier columns are read from the rules, its validator and row builder are the
ones everybody runs, and it holds no HTTP route."""

import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonymizer.anonymize import compile_plan
from anonymizer.ddl import parse_schema
from anonymizer.errors import RecordInvalid
from anonymizer.explain import demo_context
from anonymizer.kinds import KIND_NAMES, KINDS, RECORD_TABLES, Kind, KindName, plans
from anonymizer.policy import IDENTIFIER_FIELDS, default_policy, parse_policy
from anonymizer.rules import RULES, STAMPED, input_fields, rules_for
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


def test_a_kinds_columns_are_its_tables_in_schema_order() -> None:
    """The row starts from `Kind.columns`: exactly the table's columns, in the order the
    migrations leave them (ALTER ... AFTER included), so rows and `explain` show that order."""
    sql = Path(__file__).resolve().parents[2] / "sql"
    tables = parse_schema({p.name: p.read_text() for p in sorted(sql.glob("*.sql"))})
    for kind in KINDS.values():
        assert kind.columns == tuple(c.name for c in tables[kind.table].columns), kind.name


@pytest.mark.parametrize("name", KIND_NAMES)
def test_every_column_of_a_row_is_written_by_a_rule_or_stamped(name: KindName) -> None:
    kind = KINDS[name]
    record = kind.validate(REQUIRED[name], WINDOW)
    row, _ = kind.build(default_policy(), demo_context(record.time_ms), record, Enrichment())
    assert row is not None and tuple(row) == kind.columns
    ruled = {c for r in rules_for(name) if r.op for c in r.columns}
    assert ruled | {s.column for s in STAMPED} == set(kind.columns)
    assert all(r.op or not r.columns for r in rules_for(name))  # a rule that stores names its op


def test_plans_are_compiled_once_per_policy_object() -> None:
    policy = parse_policy("version = 3\n")
    first = plans(policy)
    assert plans(policy) is first
    assert set(first) == set(KINDS)
    equal = parse_policy("version = 3\n")  # an equal policy is another object: its own plans
    assert plans(equal) is not first and plans(equal) is plans(equal)


def test_the_plan_binds_the_policy_once() -> None:
    """A switched-off rule binds no step (its column stays empty), and shared operators (the
    visitor id of two fields, the three consent signals) bind once."""
    on = parse_policy('version = 1\n[identifiers]\nvisitor_id = "daily"\n')
    off = parse_policy('version = 1\n[identifiers]\nvisitor_id = "none"\nfields = []\n')
    assert (
        len(compile_plan(off, "access_log").steps) == len(compile_plan(on, "access_log").steps) - 3
    )
    assert len(compile_plan(on, "event").gates) == 1
    assert compile_plan(on, "access_log").gates == ()
