from pathlib import Path

import pytest

from anonymizer.errors import PolicyError
from anonymizer.policy import (
    DEFAULT_UNKNOWN_FIELDS,
    KNOWN_KEYS,
    SETTINGS,
    ConsentPolicy,
    GeoPolicy,
    IdentifiersPolicy,
    IpPolicy,
    MailPolicy,
    PiiPolicy,
    ReportsPolicy,
    RetentionPolicy,
    default_policy,
    parse_policy,
    policy_settings,
)

REPO = Path(__file__).resolve().parents[2]
INVALID = sorted((REPO / "testdata" / "policies").glob("invalid_*.toml"))


def test_shipped_policy_is_valid() -> None:
    p = parse_policy((REPO / "policy.toml").read_text())
    assert p.ip.ipv4_prefix == 24 and p.ip.ipv6_prefix == 48
    assert p.geo.granularity == "city"
    assert p.identifiers.fields == {"user_id", "session_id", "device_id", "imb.serial"}
    assert (
        p.mail.routing_zip == "zip5" and p.consent.analytics_without_consent == "strip_identifiers"
    )
    assert p.retention.days_for("free") == 30
    assert p.retention.days_for("enterprise") == 1095
    assert p.retention.days_for("") == 395
    assert p.retention.days_for("unknown-plan") == 395


def test_valid_strict_policy() -> None:
    p = parse_policy((REPO / "testdata" / "policies" / "valid_strict.toml").read_text())
    assert (p.version, p.ip.ipv4_prefix, p.ip.ipv6_prefix) == (7, 16, 32)
    assert p.identifiers.fields == {"user_id"} and p.url.keep_query_params == frozenset()
    assert p.retention.days_for("free") == 7 and p.retention.days_for("standard") == 30


def test_defaults_are_the_documented_ones() -> None:
    p = default_policy()
    assert (p.version, p.ip.ipv4_prefix, p.ip.ipv6_prefix, p.geo.granularity) == (1, 24, 48, "city")
    assert p.url.keep_query_params == {"utm_source", "utm_medium", "utm_campaign"}


@pytest.mark.parametrize(
    ("rotation", "epoch"), [("never", "0"), ("monthly", "2026-11"), ("daily", "2026-11-05")]
)
def test_epochs(rotation: str, epoch: str) -> None:
    from datetime import UTC, datetime

    p = parse_policy(f'version = 1\n[identifiers]\nrotation = "{rotation}"\n')
    assert p.identifiers.epoch(datetime(2026, 11, 5, 23, 59, tzinfo=UTC)) == epoch


def test_invalid_files_exist() -> None:
    assert len(INVALID) >= 8


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_policy_names_key_and_line(path: Path) -> None:
    """Each invalid file states, in its first line, the key and line the error must name."""
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    key, line = first.removeprefix("# expect: ").split(" line ")
    with pytest.raises(PolicyError) as e:
        parse_policy(path.read_text())
    assert e.value.key == key
    assert e.value.line == (None if line == "None" else int(line))
    assert key in str(e.value)


def test_pii_section_and_tenant_override() -> None:
    base = parse_policy("version = 1\n")
    assert (base.pii.action, base.pii.digits, dict(base.pii.fields)) == ("replace", 6, {})
    assert base.pii.action_for("model") == "replace"
    tenant = parse_policy('[pii]\nfields = { model = "reject" }\n', base="version = 1\n")
    assert tenant.pii.action_for("model") == "reject" and tenant.pii.action_for("os") == "replace"
    off = parse_policy("version = 1\n[pii]\ndigits = 0\n")
    assert off.pii.detectors.find("customer 12345678") == ""
    assert parse_policy("version = 1\n[pii]\ndigits = 8\n").pii.detectors.find("n 1234567") == ""


def test_a_policy_naming_only_its_version_is_the_dataclass_defaults() -> None:
    """Defaults are written once, in the dataclasses: the reader takes them from there."""
    p = parse_policy("version = 1\n")
    assert (p.ip, p.geo, p.identifiers) == (IpPolicy(), GeoPolicy(), IdentifiersPolicy())
    assert (p.mail, p.consent, p.reports) == (MailPolicy(), ConsentPolicy(), ReportsPolicy())
    assert p.retention.days == RetentionPolicy().days
    assert dict(p.retention.plans) == dict(RetentionPolicy().plans)
    assert (p.pii.action, p.pii.digits, dict(p.pii.fields)) == ("replace", PiiPolicy().digits, {})
    assert p.unknown_fields == DEFAULT_UNKNOWN_FIELDS


def test_each_key_is_declared_once_and_the_known_keys_follow() -> None:
    """The parser, the known keys and `policy_settings` are derived from one declaration per
    key (the dataclass field): the tables below are what was once written out by hand."""
    dotted = [d.dotted for d in SETTINGS]
    assert len(dotted) == len(set(dotted)) == 23
    assert dotted == list(policy_settings(default_policy()))
    assert {
        "": {"version", "ip", "geo", "identifiers", "url", "retention", "mail", "consent",
             "records", "pii", "reports"},
        "ip": {"ipv4_prefix", "ipv6_prefix"},
        "geo": {"granularity"},
        "identifiers": {"fields", "rotation", "visitor_id", "late_window_hours", "late_visitor_id"},
        "url": {"keep_query_params", "redact"},
        "retention": {"days", "plans"},
        "mail": {"routing_zip"},
        "consent": {"analytics_without_consent", "honour_gpc", "honour_dnt"},
        "records": {"unknown_fields"},
        "pii": {"action", "digits", "fields"},
        "reports": {"min_k", "asset_extensions"},
    } == KNOWN_KEYS  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("version = 1\n[records]\nsort = 1\n", "records.sort", "unknown key"),
        ("version = 1\nrecords = 3\n", "records", "must be a table"),
        ("version = 1\n[url]\nredact = ['x']\n", "url.redact[0]",
         "unknown rule 'x'; known: email, token, uuid, digits>=N"),
    ],
)  # fmt: skip
def test_derived_parser_refuses_in_the_same_words(text: str, key: str, reason: str) -> None:
    with pytest.raises(PolicyError) as e:
        parse_policy(text)
    assert (e.value.key, e.value.reason) == (key, reason)
    assert e.value.line == (3 if key.startswith("url") else 2 if "sort" not in key else 3)
