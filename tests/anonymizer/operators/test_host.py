"""`host`: lower-cased without userinfo or port; an IP literal in any form becomes {ip}."""

import pytest

from anonymizer.operators.host import Host
from anonymizer.types import AccessRecord, EventRecord
from tests.anonymizer.operators.support import DEFAULT, apply, rule, sample

HOST = rule("access_log", "host")
URL_HOST = rule("event", "url (host)")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("WWW.Example.COM:8443", "www.example.com"), ("10.1.2.3", "{ip}"), ("0x7f000001", "{ip}")],
)
def test_apply_normalizes_an_access_logs_host(sent: str, stored: str) -> None:
    assert apply(HOST, AccessRecord(time_ms=0, ip=None, host=sent)) == {"host": stored}  # type: ignore[arg-type]


def test_apply_takes_an_events_host_from_its_url() -> None:
    record = EventRecord(time_ms=0, event="e", url="https://user:pw@App.Example.com:443/a?b=c")
    assert apply(URL_HOST, record) == {"url_host": "app.example.com"}
    assert apply(URL_HOST, EventRecord(time_ms=0, event="e", url="/relative")) == {"url_host": ""}


def test_describe_and_outcome() -> None:
    assert Host().describe(HOST, DEFAULT).rule == "fixed rule"
    out = Host().outcome(URL_HOST, sample("event", {"event": "e", "url": "https://u@A.example/x"}))
    assert (out.operator, out.detail) == ("kept", "lower-cased, port dropped; userinfo dropped")
    ip = Host().outcome(HOST, sample("access_log", {"ip": "192.0.2.1", "host": "10.0.0.1"}))
    assert (ip.operator, ip.detail) == ("redacted", "an IP literal")
