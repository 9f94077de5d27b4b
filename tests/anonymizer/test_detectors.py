"""The detectors: known answers per class, negatives that must survive, the RE2 candidates as a
superset of the finders, and hypothesis searching free text with embedded personal data."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer.detectors import (
    ALL,
    DETECTOR_NAMES,
    PLACEHOLDERS,
    Detectors,
    candidate_patterns,
    iban_ok,
    luhn,
    normalize,
)
from tests import hostile


@pytest.mark.parametrize(
    ("text", "stored", "cls"),
    [
        ("john@example.com", "{email}", "email"),
        # what NFKC leaves: zero-width characters, digits of other scripts, ideographic stops
        ("ki\u200dm@exam\u200bple.com", "{email}", "email"),
        ("+1\u200b415\u200b555\u200b2671", "{phone}", "phone"),
        (
            "+\u0664\u0669 \u0663\u0660 \u0661\u0662\u0663\u0664\u0665\u0666\u0667",
            "{phone}",
            "phone",
        ),
        ("kim@example\u3002com", "{email}", "email"),
        ("1\u30022\u30023\u30024", "{ip}", "ip"),
        ('"john doe"@example.com', "{email}", "email"),
        ("müller@bücher.example", "{email}", "email"),
        ("user@host.xn--p1ai", "{email}", "email"),
        ("write john(at)example.com", "write {email}", "email"),
        ("john [at] example [dot] com", "{email}", "email"),
        ("card 4111.1111.1111.1111", "card {card}", "card"),
        ("4111_1111_1111_1111", "{card}", "card"),
        ("GB82-WEST-1234-5698-7654-32", "{iban}", "iban"),
        ("hello john@example.com bye", "hello {email} bye", "email"),
        ("jane@doe@corp.example.org", "{email}", "email"),
        ("john%40example.com", "{email}", "email"),
        ("john%2540example.com", "{email}", "email"),
        ("o'brien@example.ie", "{email}", "email"),
        ("call +1-555-123-4567 now", "call {phone} now", "phone"),
        ("+44 20 7946 0958", "{phone}", "phone"),
        ("0049 30 1234567", "{phone}", "phone"),
        ("(555) 123-4567", "{phone}", "phone"),
        ("555-123-4567", "{phone}", "phone"),
        ("555.123.4567", "{phone}", "phone"),
        ("030 1234567", "{phone}", "phone"),
        ("0171/1234567", "{phone}", "phone"),
        (
            "\uff0b\uff11 \uff15\uff15\uff15 \uff11\uff12\uff13 \uff14\uff15\uff16\uff17",
            "{phone}",
            "phone",
        ),  # full-width: NFKC
        ("4111 1111 1111 1111", "{card}", "card"),
        ("4111-1111-1111-1111", "{card}", "card"),
        ("pay 378282246310005 now", "pay {card} now", "card"),
        ("4222222222222", "{card}", "card"),
        ("DE89 3704 0044 0532 0130 00", "{iban}", "iban"),
        ("iban GB82WEST12345698765432.", "iban {iban}.", "iban"),
        ("nl91abna0417164300", "{iban}", "iban"),
        ("10.1.2.3", "{ip}", "ip"),
        ("host-10.1.2.3", "host-{ip}", "ip"),
        ("8.8.8.8.json", "{ip}.json", "ip"),
        ("ec2-54-1-2-3.compute-1.amazonaws.com", "ec2-{ip}.compute-1.amazonaws.com", "ip"),
        ("0300.0250.0.1", "{ip}", "ip"),
        ("1.2.3.4/32", "{ip}", "ip"),
        ("2001:db8::1", "{ip}", "ip"),
        ("at [fe80::1ff:fe23:4567:890a]:80", "at [{ip}]:80", "ip"),
        ("::ffff:10.1.2.3", "{ip}", "ip"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "{token}", "token"),
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: {token}", "token"),
        ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "key {token}", "token"),
        ("9f86d081884c7d659a2feaa0c55ad015aa00ff11", "{token}", "token"),
        ("ftp://bob:hunter2@files.example.com/x", "ftp://{token}files.example.com/x", "token"),
        ("customer 12345678", "customer {id}", "id"),
        ("550e8400-e29b-41d4-a716-446655440000", "{uuid}", "uuid"),
        ("john%25252540example.com", "{token}", "token"),  # still encoded after 3 rounds
    ],
)
def test_known_answers(text: str, stored: str, cls: str) -> None:
    assert ALL.redact(text) == (stored, cls)
    assert ALL.find(stored) == ""  # what is stored holds nothing any detector finds


@pytest.mark.parametrize(
    "text",
    [
        "v1.2.3", "1.2.3", "12:30:45", "2026-11-26", "2026-11-26T10:00:00Z", "order 12345",
        "logstash-monitorama-2013", "kibana-search.png", "Pixel 8", "SM-G991B", "1080x2400",
        "5.2.0", "14", "de-DE", "checkout", "std::vector", "::1", "10.1.2.0/24",
        "2001:db8:1::/48", "Chrome 120.0.6099.109", "4111 1111 1111 1112", "DE00 0000 0000",
        "a@b", "user@localhost", "255.255.255.256", "Mac OS X 10_15_7", "20 items for 9.99",
        "http://shop.example.com/cart", "", "AAAAAAAAAAAAAAAAAAAAAAAA",
        "meet at example.com", "data (at) rest", "10.0.19041.1234", "2024.1120.1530.0001",
        "react@18.2.0", "日本語のテキスト。次の文", "Straße", "\u0661\u0662\u0663",
    ],
)  # fmt: skip
def test_ordinary_text_survives(text: str) -> None:
    assert ALL.redact(text) == (text, "")


def test_luhn_and_mod97() -> None:
    assert luhn("4111 1111 1111 1111") and not luhn("4111 1111 1111 1112")
    assert not luhn("411111111111")  # 12 digits: too short for a card
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE89 3704 0044 0532 0130 01")
    assert not iban_ok("DE89-3704")


def test_normalize_decodes_until_stable_and_plus_only_in_the_form_layer() -> None:
    assert normalize("a%252540b") == "a@b"
    assert normalize("q+r%2B1", plus_is_space=True) == "q r+1"
    assert normalize("q+r") == "q+r"


def test_placeholders_are_a_closed_set() -> None:
    assert set(PLACEHOLDERS) == set(DETECTOR_NAMES)
    assert {d.name for d in ALL.detectors} == set(DETECTOR_NAMES)
    assert Detectors.build(frozenset({"email"}), None).names == ("email",)
    assert Detectors.build(None, None).find("customer 12345678") == ""  # id off


def _re2_superset(pattern: str) -> re.Pattern[str]:
    """The RE2 candidate under Python's engine (the syntax used is common to both)."""
    return re.compile(pattern)


@pytest.mark.parametrize("h", hostile.corpus(), ids=lambda h: f"{h.cls}:{h.text[:30]}")
def test_candidates_are_a_superset_on_the_corpus(h: hostile.Hostile) -> None:
    """The scanner's SQL pre-filter must let through every value the finder confirms, as
    stored (the write path stores a value unchanged when nothing is found)."""
    patterns = "|".join(f"(?:{p})" for p in candidate_patterns().values())
    found = ALL.classes(h.text)
    if found:
        assert _re2_superset(patterns + r"|%[0-9A-Fa-f]{2}|[^\x00-\x7F]").search(h.text)


# --- hypothesis ---------------------------------------------------------------------------------

_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,.-", max_size=30)
_PERSONAL = st.sampled_from(
    [h for h in hostile.corpus() if not hostile.host_only(h) and h.text == h.text.strip()]
)


@settings(max_examples=300, deadline=None)
@given(before=_WORDS, h=_PERSONAL, after=_WORDS)
def test_embedded_personal_data_is_removed(before: str, h: hostile.Hostile, after: str) -> None:
    text = f"{before} {h.text} {after}"
    stored, cls = ALL.redact(text)
    assert cls
    for needle in h.needles:
        assert needle.lower() not in stored.lower()
    assert ALL.find(stored) == ""


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_any_text_never_raises_and_redaction_is_stable(text: str) -> None:
    stored, _ = ALL.redact(text)
    assert ALL.find(stored) == ""


@pytest.mark.parametrize(
    "text",
    [
        "Kyocera-KPC650-EVDO-in-FreeBSD", "TF2-Pyro-Burn-Everything", "TelemetrySpider2",
        "HuaweiVodafone858", "Aquila 070-0508", "QP6_S30.52-23-13-4",
        "ui-bg_highlight-soft_25_327E04_1x100", "HTC 7 Mozart-2250.09.12505.111-0004",
    ],
)  # fmt: skip
def test_device_and_page_names_from_real_traffic_survive(text: str) -> None:
    """Seen in the access-log and user-agent corpora: names, not personal data."""
    assert ALL.redact(text) == (text, "")
