"""`time`: a record's time stored to the millisecond (the column takes seconds)."""

from anonymizer.operators.timestamp import Time
from anonymizer.types import EventRecord
from tests.anonymizer.operators.support import DEFAULT, apply, rule


def test_apply_stores_seconds_with_milliseconds() -> None:
    assert apply(rule("event", "time"), EventRecord(time_ms=1_764_000_000_123, event="e")) == {
        "time": 1_764_000_000.123
    }


def test_describe() -> None:
    a = Time().describe(rule("event", "time"), DEFAULT)
    assert (a.operator, a.rule) == ("kept", "fixed rule")
