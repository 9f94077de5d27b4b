"""`url_path`: a path segment holding personal data becomes its placeholder; where `pii`
rejects for the field, the record is refused instead."""

import pytest

from anonymizer.errors import RecordInvalid
from anonymizer.operators.url_path import UrlPath
from anonymizer.types import AccessRecord, EventRecord
from tests.anonymizer.operators.support import DEFAULT, apply, policy, rule, sample

PATH = rule("access_log", "path")
RECORD = AccessRecord(
    time_ms=0, ip=None, path="/users/jane@example.com/orders/1234567;jsessionid=x?q=1"
)  # type: ignore[arg-type]


def test_apply_redacts_segments_and_drops_matrix_parameters() -> None:
    assert apply(PATH, RECORD) == {"path": "/users/{email}/orders/{id}"}
    only_email = policy('[url]\nredact = ["email"]\n')
    assert apply(PATH, RECORD, only_email) == {"path": "/users/{email}/orders/1234567"}


def test_apply_on_an_events_url() -> None:
    record = EventRecord(time_ms=0, event="e", url="https://a.example/u/jane@example.com#frag")
    assert apply(rule("event", "url (path)"), record) == {"url_path": "/u/{email}"}


def test_a_rejecting_policy_refuses_the_record_naming_field_and_class() -> None:
    reject = policy('[pii.fields]\npath = "reject"\n')
    with pytest.raises(RecordInvalid) as e:
        apply(PATH, RECORD, reject)
    assert (e.value.field, e.value.error) == (
        "path", "holds personal data (email); the policy (pii) rejects it",
    )  # fmt: skip
    assert "jane" not in str(e.value)


def test_describe_effect_and_outcome() -> None:
    empty = policy("[url]\nredact = []\n")
    a = UrlPath().describe(PATH, empty)
    assert (a.operator, a.how) == ("kept", "url.redact is empty: every segment is kept")
    assert UrlPath().describe(PATH, DEFAULT).operator == "redacted"
    assert UrlPath().effect("url.redact", DEFAULT, empty) == (
        "redaction rules removed: email, token, uuid, digits>=6"
    )
    out = UrlPath().outcome(
        PATH, sample("access_log", {"ip": "192.0.2.1", "path": "/a/jane@example.com/123456789"})
    )
    assert (out.operator, out.detail) == ("redacted", "segments replaced by {email}, {id}")
    matrix = UrlPath().outcome(PATH, sample("access_log", {"ip": "192.0.2.1", "path": "/a;s=1"}))
    assert (matrix.operator, matrix.detail) == ("redacted", "`;` parameters dropped")
    kept = UrlPath().outcome(PATH, sample("access_log", {"ip": "192.0.2.1", "path": "/a/b"}))
    assert (kept.operator, kept.detail) == ("kept", "")
