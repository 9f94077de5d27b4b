import pytest

from anonymizer.properties import redact_properties, redact_value


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("pro", "pro"),
        ("v1.2.3", "v1.2.3"),
        ("order 12345", "order 12345"),
        ("2026-11-25", "2026-11-25"),
        ("12:30:45", "12:30:45"),
        ("alice@example.com", "{email}"),
        ("mail me: a.b+c@sub.example.co.uk", "mail me: {email}"),
        ("+1 415 555 2671", "{phone}"),
        ("(415) 555-2671", "{phone}"),
        ("0171 1234567", "{phone}"),
        ("0049 30 1234567", "{phone}"),
        ("192.168.0.1", "{ip}"),
        ("from 203.0.113.9 today", "from {ip} today"),
        ("fe80::1", "{ip}"),
        ("2001:db8::8a2e:370:7334", "{ip}"),
        ("999.1.1.1", "999.1.1.1"),
        ("4111111111111111", "{card}"),
        ("acct-912345678", "acct-{id}"),
        ("acct-0012345678", "acct-{phone}"),  # an international prefix shape: redacted either way
        (42, "42"),
        (3.5, "3.5"),
        (True, "true"),
        (False, "false"),
        (12345678, "{id}"),
    ],
)
def test_redact_value(value: str | int | float | bool, stored: str) -> None:
    assert redact_value(value) == stored


def test_keys_are_kept() -> None:
    assert redact_properties((("email", "x@y.io"), ("n", 1))) == {"email": "{email}", "n": "1"}
