import logging

import pytest

from collector.logs import ScrubbingFormatter, scrub


@pytest.mark.parametrize(
    ("line", "scrubbed"),
    [
        ("Error handling request from 203.0.113.7", "Error handling request from {ip}"),
        ("peer ('2001:db8::1', 443)", "peer ('{ip}', 443)"),
        ("peer ::ffff:198.51.100.2 closed", "peer ::ffff:{ip} closed"),
        ("user bob@example.com failed", "user {email} failed"),
        (
            "kept 203.0.113.0/24 and 2001:db8::/48",
            "kept 203.0.113.0/24 and 2001:db8::/48",
        ),  # prefixes
        ("at 12:30:45 version 1.2.3", "at 12:30:45 version 1.2.3"),
        ("POST /v1/logs 202 3.1ms", "POST /v1/logs 202 3.1ms"),
    ],
)
def test_scrub(line: str, scrubbed: str) -> None:
    assert scrub(line) == scrubbed


def test_tracebacks_are_scrubbed_too() -> None:
    try:
        raise ValueError("bad value 192.0.2.55")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed for %s", ("192.0.2.55",), True
        )
        import sys

        record.exc_info = sys.exc_info()
    text = ScrubbingFormatter("%(message)s").format(record)
    assert "192.0.2.55" not in text and text.count("{ip}") >= 2 and "ValueError" in text
