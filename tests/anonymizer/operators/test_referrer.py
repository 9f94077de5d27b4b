"""`referrer`: cut to its host; a relative or empty referrer stores nothing."""

import pytest

from anonymizer.operators.referrer import Referrer
from anonymizer.types import AccessRecord
from tests.anonymizer.operators.support import DEFAULT, apply, rule, sample

REFERRER = rule("access_log", "referrer")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("https://Mail.Example.org:443/inbox/jane@example.com?x=1", "mail.example.org"),
        ("http://user:pw@10.0.0.1/", "{ip}"),
        ("/relative/path", ""),
        ("", ""),
    ],
)
def test_apply_keeps_the_host_only(sent: str, stored: str) -> None:
    assert apply(REFERRER, AccessRecord(time_ms=0, ip=None, referrer=sent)) == {
        "referrer_host": stored
    }  # type: ignore[arg-type]


def test_describe_and_outcome() -> None:
    assert Referrer().describe(REFERRER, DEFAULT).operator == "truncated"
    raw = {"ip": "192.0.2.1", "referrer": "https://a.example/x"}
    assert Referrer().outcome(REFERRER, sample("access_log", raw)).detail == "host only"
    raw = {"ip": "192.0.2.1", "referrer": "x"}
    assert Referrer().outcome(REFERRER, sample("access_log", raw)).operator == "dropped"
