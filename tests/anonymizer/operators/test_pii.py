"""`pii`: a free-text field is stored as sent, and the detectors then run over every free-text
value of the row: what they find is replaced in place, or the record refused."""

import pytest

from anonymizer.errors import RecordInvalid
from anonymizer.operators.pii import NAMED_COLUMNS, Pii, detect_free_text
from anonymizer.types import DeviceRecord
from tests.anonymizer.operators.support import DEFAULT, apply, policy, rule, sample

MODEL = rule("device", "model")


def test_apply_stores_the_field_as_sent() -> None:
    record = DeviceRecord(time_ms=0, device_id="d", model="Pixel call +49 30 1234567")
    assert apply(MODEL, record) == {"model": "Pixel call +49 30 1234567"}


def test_finish_redacts_free_text_in_place_and_leaves_named_columns() -> None:
    finish = Pii().finish(DEFAULT, "device_info")
    row = finish({"model": "call +49 30 1234567 now", "device_pseudonym": "0123456789abcdef0123"})
    assert row == {"model": "call {phone} now", "device_pseudonym": "0123456789abcdef0123"}
    assert "device_pseudonym" in NAMED_COLUMNS["device_info"]


def test_finish_rejects_where_the_policy_says_so() -> None:
    reject = policy('[pii]\naction = "reject"\n')
    with pytest.raises(RecordInvalid) as e:
        detect_free_text(reject, "device_info", {"model": "jane@example.com"})
    assert (e.value.field, e.value.error) == (
        "model", "holds personal data (email); the policy (pii) rejects it",
    )  # fmt: skip
    with pytest.raises(RecordInvalid) as e:  # a parsed agent's column names its input field
        detect_free_text(reject, "access_log", {"browser_family": "jane@example.com"})
    assert e.value.field == "user_agent"
    with pytest.raises(RecordInvalid) as e:  # a map: the key of the value
        detect_free_text(reject, "usage_events", {"properties": {"to": "jane@example.com"}})
    assert e.value.field == "properties.to"


def test_describe_effect_and_outcome() -> None:
    assert Pii().describe(MODEL, DEFAULT).rule == "pii.action, pii.fields, pii.digits"
    assert Pii().effect("pii.action", DEFAULT, policy('[pii]\naction = "reject"\n')) == (
        "personal data found in a kept field is now rejected (per record)"
    )
    assert Pii().effect("pii.digits", DEFAULT, policy("[pii]\ndigits = 0\n")) == (
        "runs of digits are no longer replaced by {id} in free text"
    )
    raw = {"device_id": "d", "model": "x jane@example.com"}
    assert Pii().outcome(MODEL, sample("device", raw)).operator == "redacted"
    assert (
        Pii().outcome(MODEL, sample("device", {"device_id": "d", "model": "Pixel"})).operator
        == "kept"
    )
