"""`properties`: the map is stored as text; the detectors (the `pii` pass) redact its values."""

from anonymizer.operators.properties import Properties
from anonymizer.types import EventRecord
from tests.anonymizer.operators.support import DEFAULT, apply, rule, sample

PROPS = rule("event", "properties")


def test_apply_stores_every_value_as_text() -> None:
    record = EventRecord(
        time_ms=0, event="e", properties=(("n", 3), ("r", 0.5), ("b", True), ("s", "x"))
    )
    assert apply(PROPS, record) == {"properties": {"n": "3", "r": "0.5", "b": "true", "s": "x"}}


def test_describe_and_outcome_name_the_values_replaced() -> None:
    assert Properties().describe(PROPS, DEFAULT).operator == "redacted"
    raw = {
        "event": "e",
        "properties": {"to": "jane@example.com", "note": "call +49 30 1234567 now", "n": 1},
    }
    out = Properties().outcome(PROPS, sample("event", raw))
    assert (out.operator, out.detail) == ("redacted", "values replaced: to, note")
    plain = sample("event", {"event": "e", "properties": {"n": 1}})
    assert Properties().outcome(PROPS, plain).operator == "kept"
