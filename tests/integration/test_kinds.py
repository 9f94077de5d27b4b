"""Devices, usage events and mail scans end to end: stored, anonymized, rejected by index."""

import re
from typing import Any

from anonymizer.imb import encode_bars, parse_digits
from tests.conftest import ADMIN_KEY, AppFactory, auth, query
from tests.integration.test_ingest import stored_strings

TRACKING = "01234567094987654321"
ROUTING = "01234567891"
BARS = "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA"


async def post(client: Any, route: str, records: Any, **headers: str) -> dict[str, Any]:
    r = await client.post(route, json=records, headers=auth(**headers))
    assert r.status == 202, await r.text()
    body: dict[str, Any] = await r.json()
    return body


async def test_devices(start: AppFactory) -> None:
    client = await start()
    body = await post(
        client,
        "/v1/devices",
        [
            {"device_id": "IMEI-356938035643809", "user_id": "dana@example.com", "manufacturer": "Google",
             "model": "Pixel 8", "os": "Android", "os_version": "14", "app_version": "5.2.0",
             "screen": "1080x2400", "locale": "de-DE", "ip": "198.51.100.77",
             "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"},
            {"model": "no id"},
            {"device_id": "d2", "nested": {"a": 1}},
            {"device_id": "d3", "ip": "bad"},
        ],
    )  # fmt: skip
    assert body["accepted"] == 1
    assert body["errors"] == [
        {"index": 1, "field": "device_id", "error": "is required"},
        {"index": 2, "field": "nested", "error": "unknown field"},
        {"index": 3, "field": "ip", "error": "not an IP address"},
    ]
    row = query(client, "SELECT * EXCEPT (time) FROM device_info")[0]
    assert row["model"] == "Pixel 8" and row["ip_prefix"] == "198.51.100.0/24"
    assert row["browser_family"].startswith("Chrome") and len(row["device_pseudonym"]) == 32
    blob = " ".join(stored_strings(client, "device_info"))
    for raw in ("356938035643809", "dana", "198.51.100.77", "Mozilla"):
        assert raw not in blob


async def test_events_properties_and_consent(start: AppFactory) -> None:
    client = await start()
    base = {
        "event": "checkout",
        "feature": "cart",
        "action": "click",
        "user_id": "erin",
        "session_id": "s9",
    }
    body = await post(
        client,
        "/v1/events",
        [
            {**base, "consent": ["essential", "analytics"], "url": "https://shop.example/u/erin@example.com/cart?utm_source=x&ref=1",
             "properties": {"plan": "pro", "contact": "erin@example.com", "phone": "+1 415 555 2671",
                            "from_ip": "203.0.113.9", "card": "4111111111111111", "qty": 3, "gift": True, "price": 9.5}},
            {**base, "consent": ["essential", "analytics"], "gpc": True},
            {**base, "consent": ["essential"]},
            {**base, "consent": ["analytics"], "dnt": "1"},
            {**base, "properties": {"nested": {"x": 1}}},
            {**base, "properties": {"list": [1, 2]}},
            {"feature": "no event"},
            {**base, "consent": ["marketing"]},
        ],
    )  # fmt: skip
    assert body["accepted"] == 4
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (4, "properties.nested"), (5, "properties.list"), (6, "event"), (7, "consent"),
    ]  # fmt: skip
    assert body["errors"][0]["error"] == "nested values are not allowed: flatten the map"
    rows = query(
        client,
        "SELECT url_host, url_path, url_query, properties, user_pseudonym, identifiers_stripped, "
        "consent_reason FROM usage_events ORDER BY consent_reason",
    )
    # default policy: without analytics consent (or with GPC / DNT) identifiers are stripped
    assert [(r["consent_reason"], r["identifiers_stripped"], r["user_pseudonym"] == "") for r in rows] == [
        ("", False, False), ("dnt", True, True), ("gpc", True, True), ("no_consent", True, True),
    ]  # fmt: skip
    kept = rows[0]
    assert (kept["url_host"], kept["url_path"], kept["url_query"]) == (
        "shop.example",
        "/u/{email}/cart",
        "utm_source=x",
    )
    assert kept["properties"] == {
        "plan": "pro", "contact": "{email}", "phone": "{phone}", "from_ip": "{ip}", "card": "{card}",
        "qty": "3", "gift": "true", "price": "9.5",
    }  # fmt: skip
    blob = " ".join(stored_strings(client, "usage_events"))
    for raw in ("erin", "s9", "415 555", "203.0.113.9", "4111111111111111"):
        assert raw not in blob
    metrics = await (await client.get("/metrics", headers=auth(ADMIN_KEY))).text()
    assert (
        'collector_tenant_records_consent_limited_total{kind="event",reason="gpc",tenant="acme"} 1'
        in metrics
    )


async def test_consent_drop_policy(start: AppFactory, tmp_path: Any) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(
        'version = 9\n[consent]\nanalytics_without_consent = "drop"\nhonour_dnt = false\n'
    )
    client = await start(policy_file=policy)
    body = await post(
        client, "/v1/events",
        [{"event": "a", "consent": "analytics"}, {"event": "b"}, {"event": "c", "consent": "analytics", "gpc": True},
         {"event": "d", "consent": "analytics", "dnt": True}],
    )  # fmt: skip
    assert body == {"accepted": 4, "rejected": 0, "errors": []}  # dropped by policy is not an error
    assert query(client, "SELECT event, policy_version FROM usage_events ORDER BY event") == [
        {"event": "a", "policy_version": 9}, {"event": "d", "policy_version": 9},
    ]  # fmt: skip


async def test_mail_scans(start: AppFactory) -> None:
    client = await start()
    flipped = BARS[:10] + ("A" if BARS[10] != "A" else "D") + BARS[11:]
    body = await post(
        client,
        "/v1/mail-scans",
        [
            {"imb": TRACKING + ROUTING, "event": "processed", "facility_zip": "20260", "operation_code": "918", "mail_class": "first-class"},
            {"imb": BARS, "event": "delivered", "delivery_status": "delivered"},
            {"imb": " " + TRACKING + " "},
            {"imb": flipped},
            {"imb": "0123"},
            {"imb": TRACKING, "facility_zip": "2026"},
            {"event": "no barcode"},
        ],
    )  # fmt: skip
    assert body["accepted"] == 3
    assert body["errors"] == [
        {"index": 3, "field": "imb", "error": "frame check failed"},
        {"index": 4, "field": "imb", "error": "IMb digits must be 20, 25, 29 or 31 digits, got 4"},
        {"index": 5, "field": "facility_zip", "error": "must be a 5-digit ZIP or ZIP+4"},
        {"index": 6, "field": "imb", "error": "is required"},
    ]
    rows = query(
        client,
        "SELECT event, barcode_id, service_type, mailer_id, serial_pseudonym, routing_zip, facility_zip "
        "FROM mail_scans ORDER BY event",
    )
    assert [
        (r["event"], r["barcode_id"], r["service_type"], r["mailer_id"], r["routing_zip"])
        for r in rows
    ] == [
        ("", "01", "234", "567094", ""),
        ("delivered", "01", "234", "567094", "01234"),
        ("processed", "01", "234", "567094", "01234"),
    ]
    assert len({r["serial_pseudonym"] for r in rows}) == 1  # bars and digits: the same piece
    blob = " ".join(stored_strings(client, "mail_scans"))
    assert "987654321" not in blob and ROUTING not in blob and BARS not in blob
    assert not re.search(r"\d{20,}", blob)


async def test_routing_zip3_and_none(start: AppFactory, tmp_path: Any) -> None:
    for version, setting in ((3, "zip3"), (4, "none")):
        policy = tmp_path / f"{setting}.toml"
        policy.write_text(f'version = {version}\n[mail]\nrouting_zip = "{setting}"\n')
        client = await start(policy_file=policy)
        await post(
            client, "/v1/mail-scans", [{"imb": encode_bars(parse_digits(TRACKING + ROUTING))}]
        )
        rows = query(
            client, "SELECT policy_version, routing_zip FROM mail_scans ORDER BY policy_version"
        )
        await client.close()
    assert rows == [
        {"policy_version": 3, "routing_zip": "012"},
        {"policy_version": 4, "routing_zip": ""},
    ]
