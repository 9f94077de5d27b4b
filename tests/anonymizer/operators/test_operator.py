"""The operator interface and what every operator shares: wording helpers, the compiled copy,
and where a step reads a rule's field."""

import pytest

from anonymizer.operators.operator import (
    Operator,
    copier,
    copy_step,
    field_of,
    finer,
    host_of,
    ordered,
    path_of,
    placeholders,
    set_change,
    split_target,
    target_of,
)
from anonymizer.types import AccessRecord, Enrichment, EventRecord
from tests.anonymizer.operators.support import CTX, DEFAULT, rule


def test_wording_helpers() -> None:
    assert (
        finer(24, 16) == "coarser: less identifying" and finer(16, 24) == "finer: more identifying"
    )
    assert ordered("kept as", "zip5", "zip3", ("none", "zip3", "zip5")) == (
        "kept as zip3 instead of zip5 (coarser: less identifying)"
    )
    assert set_change("x", ["a", "b"], ["b", "c"], "on", "off") == "x on: c; x off: a"
    assert set_change("x", ["a", "b"], ["b", "a"], "on", "off") == (
        "the same entries in another order: no effect"
    )
    assert split_target("/a/b?q=1#f") == ("/a/b", "q=1")
    assert placeholders("/u/jane/42", "/u/{email}/{id}") == "{email}, {id}"


def test_copier_compiles_straight_assignments_of_checked_paths() -> None:
    row: dict[str, object] = {}
    copier({"s": "status", "h": "host"})(
        AccessRecord(time_ms=0, ip=None, status=200, host="h"), row
    )  # type: ignore[arg-type]
    assert row == {"s": 200, "h": "h"}
    step = copy_step({"e": "event"})
    step(EventRecord(time_ms=0, event="go"), Enrichment(), CTX, row)
    assert row["e"] == "go"
    with pytest.raises(ValueError, match="not an attribute path"):
        copier({"x": "a; import os"})


def test_where_a_step_reads_a_field() -> None:
    event = EventRecord(time_ms=0, event="e", url="https://u@h.example:1/p/q?x=1")
    url = rule("event", "url (path)")
    assert (target_of(url)(event), host_of(url)(event)) == ("/p/q?x=1", "h.example:1")
    access = AccessRecord(time_ms=0, ip=None, host="a.example", path="/p")  # type: ignore[arg-type]
    path = rule("access_log", "path")
    assert (target_of(path)(access), host_of(rule("access_log", "host"))(access)) == (
        "/p",
        "a.example",
    )
    assert path_of(rule("mail_scan", "imb (mailer id)"), "mailer_id") == "imb.mailer_id"
    assert field_of(rule("access_log", "status"))(access) == 0


def test_the_defaults_do_nothing_and_describe_the_rule_as_declared() -> None:
    class Bare(Operator):
        name = "bare"

    r = rule("access_log", "referrer")
    a = Bare().describe(r, DEFAULT)
    assert (a.operator, a.how, a.rule) == (r.operator, r.how, r.rule)
    assert Bare().bind(r, DEFAULT) is None and Bare().gate(r, DEFAULT) is None
    assert Bare().stores(r, DEFAULT) is None and Bare().finish(DEFAULT, "x") is None
    with pytest.raises(KeyError, match="bare owns no policy key"):
        Bare().effect("version", DEFAULT, DEFAULT)
