"""`anonymize_access` as a spec: what each input field becomes in the stored row."""

from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer import (
    AccessRecord,
    Enrichment,
    GeoInfo,
    PseudonymKey,
    TenantContext,
    UserAgentInfo,
    anonymize_access,
    parse_policy,
)
from anonymizer.anonymize import anonymize_device, anonymize_event, anonymize_mail_scan
from anonymizer.imb import parse_imb
from anonymizer.ip import parse_ip
from anonymizer.pseudonym import coarse_visitor_id, pseudonymize
from anonymizer.types import DeviceRecord, EventRecord, MailScanRecord
from tests import hostile

REPO = Path(__file__).resolve().parents[2]
POLICY = parse_policy((REPO / "policy.toml").read_text())
KEY = PseudonymKey("2026-11", b"k" * 32)
CTX = TenantContext("acme", "free", KEY)
RECORD = AccessRecord(
    time_ms=1_764_000_000_123,
    ip=parse_ip("83.149.9.216"),
    method="GET",
    host="www.example.com",
    path="/users/jane@example.com/orders/1234567?utm_source=mail&token=abc",
    status=200,
    bytes=512,
    duration_ms=12.5,
    referrer="https://mail.example.org/inbox/jane@example.com",
    user_agent="Mozilla/5.0 (secret build 42)",
    user_id="jane",
    session_id="s-1",
    service="web",
)
ENRICH = Enrichment(
    UserAgentInfo("Chrome", "120", "Windows", "10", "Other", "", "", False, False, True, False),
    GeoInfo("DE", "BE", "Berlin"),
)


def test_row() -> None:
    row = anonymize_access(POLICY, CTX, RECORD, ENRICH)
    assert row == {
        "tenant_id": "acme",
        "time": 1_764_000_000.123,
        "service": "web",
        "host": "www.example.com",
        "method": "GET",
        "path": "/users/{email}/orders/{id}",
        "route": "/users/{id}/orders/{id}",
        "query": "utm_source=mail",
        "status": 200,
        "bytes": 512,
        "duration_ms": 12.5,
        "referrer_host": "mail.example.org",
        "ip_prefix": "83.149.9.0/24",
        "ip_version": 4,
        "geo_country": "DE",
        "geo_region": "BE",
        "geo_city": "Berlin",
        "browser_family": "Chrome",
        "browser_major": "120",
        "os_family": "Windows",
        "os_version": "10",
        "device_family": "Other",
        "device_brand": "",
        "device_model": "",
        "is_mobile": False,
        "is_tablet": False,
        "is_pc": True,
        "is_bot": False,
        "user_pseudonym": pseudonymize(KEY, "user_id", "jane"),
        "session_pseudonym": pseudonymize(KEY, "session_id", "s-1"),
        # no salt for the record's day (gone): the shipped policy's coarse fallback, made of the
        # stored prefix and client families and the day only
        "visitor_id": coarse_visitor_id(
            "acme", 20_416, "83.149.9.0/24", "Chrome", "Windows", "Other"
        ),
        "policy_version": 1,
        "key_epoch": "2026-11",
        "retention_days": 30,
    }


def test_no_raw_personal_value_survives() -> None:
    blob = orjson.dumps(anonymize_access(POLICY, CTX, RECORD, ENRICH)).decode()
    for raw in ("83.149.9.216", "jane", "s-1", "secret build", "inbox", "abc", "1234567"):
        assert raw not in blob


def test_identifier_not_in_policy_is_dropped_not_passed_through() -> None:
    policy = parse_policy('version = 2\n[identifiers]\nfields = ["user_id"]\n')
    row = anonymize_access(policy, CTX, RECORD, ENRICH)
    assert row["session_pseudonym"] == ""
    assert row["user_pseudonym"] != ""
    assert row["policy_version"] == 2


@pytest.mark.parametrize(
    ("granularity", "geo"),
    [
        ("city", ("DE", "BE", "Berlin")),
        ("region", ("DE", "BE", "")),
        ("country", ("DE", "", "")),
        ("none", ("", "", "")),
    ],
)
def test_geo_granularity(granularity: str, geo: tuple[str, str, str]) -> None:
    policy = parse_policy(f'version = 1\n[geo]\ngranularity = "{granularity}"\n')
    row = anonymize_access(policy, CTX, RECORD, ENRICH)
    assert (row["geo_country"], row["geo_region"], row["geo_city"]) == geo


def test_ip_prefixes_follow_policy() -> None:
    policy = parse_policy("version = 1\n[ip]\nipv4_prefix = 16\nipv6_prefix = 32\n")
    v6 = AccessRecord(time_ms=0, ip=parse_ip("2001:db8:1:2::9"))
    assert anonymize_access(policy, CTX, RECORD, ENRICH)["ip_prefix"] == "83.149.0.0/16"
    assert anonymize_access(policy, CTX, v6, ENRICH)["ip_prefix"] == "2001:db8::/32"


def test_device_row() -> None:
    from anonymizer.anonymize import anonymize_device
    from anonymizer.types import DeviceRecord

    rec = DeviceRecord(
        time_ms=0,
        device_id="dev-1",
        user_id="jane",
        model="Pixel 8",
        ip=parse_ip("2001:db8:1:2::3"),
    )
    row = anonymize_device(POLICY, CTX, rec, ENRICH)
    assert row["device_pseudonym"] == pseudonymize(KEY, "device_id", "dev-1")
    assert (
        row["ip_prefix"] == "2001:db8:1::/48"
        and row["geo_country"] == "DE"
        and row["model"] == "Pixel 8"
    )
    assert (
        row["browser_family"] == ""
    )  # no user agent sent: the enrichment's default is not claimed
    no_ip = anonymize_device(POLICY, CTX, DeviceRecord(time_ms=0, device_id="d"), ENRICH)
    assert (no_ip["ip_prefix"], no_ip["ip_version"]) == ("", 0)


def test_event_row_strips_identifiers_without_consent() -> None:
    from anonymizer.anonymize import anonymize_event
    from anonymizer.types import Consent, EventRecord

    rec = EventRecord(time_ms=0, event="e", user_id="jane", url="https://x.example/a/jane@example.com?utm_source=m&q=1",
                      properties=(("to", "jane@example.com"),), consent=Consent(frozenset({"analytics"})))  # fmt: skip
    row, reason = anonymize_event(POLICY, CTX, rec)
    assert reason == "" and row is not None
    assert (row["url_host"], row["url_path"], row["url_query"]) == (
        "x.example",
        "/a/{email}",
        "utm_source=m",
    )
    assert row["url_route"] == "/a/{id}"
    assert row["user_pseudonym"] == pseudonymize(KEY, "user_id", "jane")
    assert row["properties"] == {"to": "{email}"}
    stripped, reason = anonymize_event(
        POLICY, CTX, EventRecord(time_ms=0, event="e", user_id="jane")
    )
    assert reason == "no_consent" and stripped is not None
    assert stripped["user_pseudonym"] == "" and stripped["identifiers_stripped"] is True


def test_mail_scan_row_never_keeps_the_full_barcode() -> None:
    from anonymizer.anonymize import anonymize_mail_scan
    from anonymizer.imb import parse_digits
    from anonymizer.types import MailScanRecord

    rec = MailScanRecord(
        time_ms=0, imb=parse_digits("01234567094987654321" + "01234567891"), event="delivered"
    )
    row = anonymize_mail_scan(POLICY, CTX, rec)
    assert (row["barcode_id"], row["service_type"], row["mailer_id"], row["routing_zip"]) == (
        "01",
        "234",
        "567094",
        "01234",
    )
    assert row["serial_pseudonym"] == pseudonymize(KEY, "imb.serial", "567094" + "987654321")
    assert (
        "987654321" not in orjson.dumps(row).decode() and "67891" not in orjson.dumps(row).decode()
    )
    assert "987654321" not in repr(rec)


def test_daily_visitor_id() -> None:
    from dataclasses import replace

    from anonymizer.pseudonym import DAY_MS, daily_visitor_id

    policy = parse_policy('version = 1\n[identifiers]\nvisitor_id = "daily"\n')
    day = RECORD.time_ms // DAY_MS
    ctx = TenantContext("acme", "free", KEY, {day: b"s" * 32})
    row = anonymize_access(policy, ctx, RECORD, ENRICH)
    assert row["visitor_id"] == daily_visitor_id(
        b"s" * 32, "acme", RECORD.ip.packed, RECORD.user_agent
    )
    other_day = anonymize_access(
        policy, replace(ctx, visitor_salts={day: b"t" * 32}), RECORD, ENRICH
    )
    assert other_day["visitor_id"] not in ("", row["visitor_id"])  # a new salt: unlinkable
    other_tenant = anonymize_access(policy, replace(ctx, tenant_id="globex"), RECORD, ENRICH)
    assert other_tenant["visitor_id"] != row["visitor_id"]
    salt_gone = anonymize_access(policy, replace(ctx, visitor_salts={}), RECORD, ENRICH)
    assert salt_gone["visitor_id"] == ""
    none = parse_policy('version = 1\n[identifiers]\nvisitor_id = "none"\n')
    assert anonymize_access(none, ctx, RECORD, ENRICH)["visitor_id"] == ""  # policy says none


# --- personal data in free text: every kept text field goes through the detectors ---------------

_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,.-", max_size=20)
_HOSTILE = st.sampled_from(
    [h for h in hostile.corpus() if not hostile.host_only(h) and h.text == h.text.strip()]
)


@settings(max_examples=150, deadline=None)
@given(before=_TEXT, h=_HOSTILE, after=_TEXT)
def test_rows_never_hold_embedded_personal_data(
    before: str, h: hostile.Hostile, after: str
) -> None:
    text = f"{before} {h.text} {after}"
    ua = UserAgentInfo(text, text, text, text, text, text, text, False, False, False, False)
    rows = [
        anonymize_access(POLICY, CTX, AccessRecord(time_ms=0, ip=None, service=text, path="/" + text), Enrichment(ua)),
        anonymize_device(POLICY, CTX, DeviceRecord(time_ms=0, device_id="d", manufacturer=text, model=text, os=text, os_version=text, app_version=text, screen=text, locale=text), Enrichment(ua)),
        anonymize_event(POLICY, CTX, EventRecord(time_ms=0, event=text, feature=text, action=text, url="https://x.example/" + text, properties=(("k", text),)))[0],
        anonymize_mail_scan(POLICY, CTX, MailScanRecord(time_ms=0, imb=parse_imb(hostile.TRACKING + hostile.ROUTING), event=text, operation_code=text, mail_class=text, delivery_status=text)),
    ]  # fmt: skip
    blob = orjson.dumps(rows).decode().lower()
    for needle in h.needles:
        assert orjson.dumps(needle).decode()[1:-1].lower() not in blob


# --- late records: the coarse fallback subject ---------------------------------------------------


def _late(policy_text: str, record: AccessRecord, ctx: TenantContext = CTX) -> str:
    policy = parse_policy(policy_text)
    return str(anonymize_access(policy, ctx, record, ENRICH)["visitor_id"])


LATE = 'version = 1\n[identifiers]\nvisitor_id = "daily"\nlate_visitor_id = "{}"\n'


def test_a_record_with_its_day_salt_gets_the_daily_id_not_the_fallback() -> None:
    ctx = TenantContext("acme", "free", KEY, {RECORD.time_ms // 86_400_000: b"s" * 32})
    vid = _late(LATE.format("coarse"), RECORD, ctx)
    assert len(vid) == 32 and not vid.startswith("~")


def test_the_fallback_is_chosen_by_the_policy() -> None:
    assert _late(LATE.format("none"), RECORD) == ""
    assert _late('version = 1\n[identifiers]\nlate_visitor_id = "coarse"\n', RECORD) == ""
    assert _late(LATE.format("coarse"), RECORD).startswith("~")
    assert _late(LATE.format("coarse"), replace(RECORD, ip=None)) == ""  # no address: none


def test_the_coarse_id_is_per_day_and_per_tenant() -> None:
    text = LATE.format("coarse")
    same_day = replace(RECORD, ip=parse_ip("83.149.9.7"), user_agent="another build")
    assert _late(text, same_day) == _late(text, RECORD)  # same prefix and families: one subject
    next_day = replace(RECORD, time_ms=RECORD.time_ms + 86_400_000)
    assert _late(text, next_day) != _late(text, RECORD)  # no join key across days
    other = TenantContext("globex", "free", KEY)
    assert _late(text, RECORD, other) != _late(text, RECORD)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 600), st.integers(0, 3)), min_size=1, max_size=40))
def test_the_coarse_id_never_counts_more_subjects_than_the_daily_id(
    visits: list[tuple[int, int]],
) -> None:
    """k-anonymity is not weakened: on any set of one day's records the fallback gives at most
    as many distinct subjects as the daily visitor id would."""
    salted = TenantContext("acme", "free", KEY, {RECORD.time_ms // 86_400_000: b"s" * 32})
    policy = parse_policy(LATE.format("coarse"))
    daily, coarse = set(), set()
    for host, agent in visits:
        ip = parse_ip(f"10.{host // 256}.{host % 256}.1")
        r = replace(RECORD, ip=ip, user_agent=f"agent {agent}")
        ua = UserAgentInfo(
            f"B{agent % 2}", "1", "OS", "1", "Other", "", "", False, False, True, False
        )
        daily.add(anonymize_access(policy, salted, r, Enrichment(ua))["visitor_id"])
        coarse.add(anonymize_access(policy, CTX, r, Enrichment(ua))["visitor_id"])
    assert len(coarse) <= len(daily)
