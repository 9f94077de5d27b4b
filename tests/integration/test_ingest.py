"""End to end through real HTTP into the embedded engine: what is stored, and what is not."""

import gzip
import ipaddress
import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from collector.appkeys import SINK
from tests.conftest import OTHER_KEY, AppFactory, auth, corpus_lines, query

IP_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!/)|[0-9a-fA-F:]*:[0-9a-fA-F:]+(?!/)")


def string_columns(client: Any, table: str) -> list[str]:
    cols = query(
        client,
        f"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '{table}' "
        "AND type LIKE '%String%'",
    )
    return [c["name"] for c in cols]


def stored_strings(client: Any, table: str) -> list[str]:
    cols = string_columns(client, table)
    rows = query(client, f"SELECT {', '.join(cols)} FROM {table}")
    return [str(v) for r in rows for v in r.values() if v]


async def test_corpus_end_to_end(
    start: AppFactory, caplog: pytest.LogCaptureFixture, data_dir: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await start()
    lines = corpus_lines()
    t0 = time.perf_counter()
    for i in range(0, len(lines), 2000):
        body = gzip.compress(("\n".join(lines[i : i + 2000]) + "\n").encode())
        r = await client.post(
            "/v1/logs",
            data=body,
            headers=auth(**{"Content-Type": "text/plain", "Content-Encoding": "gzip"}),
        )
        assert r.status == 202, await r.text()
        assert await r.json() == {"accepted": 2000, "rejected": 0, "errors": []}
    elapsed = time.perf_counter() - t0
    print(f"\ncorpus: 10000 records in {elapsed:.2f}s = {10000 / elapsed:,.0f} records/s")

    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 10_000}]
    ips = {line.split(" ", 1)[0] for line in lines}
    assert len(ips) > 1500

    # No full client IP in any stored string column. A network address is written with its
    # prefix length ("x.y.z.0/24"); a corpus client whose own address ends in .0 equals its
    # network's first address, which is what a /24 cut yields and is not that client's address.
    for value in stored_strings(client, "access_log"):
        for token in IP_RE.findall(value):
            assert token not in ips, "a full client IP reached storage"

    # Each line's prefix is the /24 of its IP, and nothing else.
    expected = Counter(
        str(ipaddress.ip_network(f"{ip}/24", strict=False))
        for ip in (line.split(" ", 1)[0] for line in lines)
    )
    stored = Counter(
        {
            r["ip_prefix"]: int(r["n"])
            for r in query(
                client, "SELECT ip_prefix, count() AS n FROM access_log GROUP BY ip_prefix"
            )
        }
    )
    assert stored == expected

    # What else a demanding reader of the table expects.
    summary = query(
        client,
        "SELECT uniqExact(tenant_id) AS tenants, any(tenant_id) AS tenant, min(policy_version) AS pv, "
        "countIf(browser_family = 'Other') AS unknown_browser, countIf(is_bot) AS bots, "
        "countIf(status = 200) AS ok, min(retention_days) AS rd, max(time) <= now64(3) AS past "
        "FROM access_log",
    )[0]
    assert summary["tenants"] == 1 and summary["tenant"] == "acme" and summary["pv"] == 1
    assert summary["rd"] == 395 and summary["past"] in (1, True)
    assert summary["unknown_browser"] < 2000 and summary["bots"] > 500 and summary["ok"] > 8000

    # Nothing raw in a log line or left on disk beside the engine's files.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(ip in logged for ip in ips)
    assert list((data_dir / "tmp").iterdir()) == []


async def test_json_array_object_and_ndjson(start: AppFactory) -> None:
    client = await start()
    record = {
        "ip": "203.0.113.9",
        "path": "/p?utm_source=x&q=secret",
        "user_id": "u1",
        "status": 200,
    }
    r1 = await client.post("/v1/logs", json=[record, record], headers=auth())
    r2 = await client.post("/v1/logs", json=record, headers=auth())
    nd = zstandard.ZstdCompressor().compress(b"\n".join(orjson.dumps(record) for _ in range(3)))
    r3 = await client.post(
        "/v1/logs",
        data=nd,
        headers=auth(**{"Content-Type": "application/x-ndjson", "Content-Encoding": "zstd"}),
    )
    assert [(r.status, (await r.json())["accepted"]) for r in (r1, r2, r3)] == [
        (202, 2),
        (202, 1),
        (202, 3),
    ]
    rows = query(client, "SELECT path, query, ip_prefix, user_pseudonym FROM access_log")
    assert len(rows) == 6
    assert {(r["path"], r["query"], r["ip_prefix"]) for r in rows} == {
        ("/p", "utm_source=x", "203.0.113.0/24")
    }
    assert len({r["user_pseudonym"] for r in rows}) == 1 and rows[0]["user_pseudonym"] not in (
        "",
        "u1",
    )


async def test_mixed_batch_keeps_good_records(start: AppFactory) -> None:
    client = await start()
    batch = [
        {"ip": "198.51.100.1", "path": "/ok"},
        {"ip": "not-an-ip", "path": "/bad"},
        {"ip": "198.51.100.2", "status": "two hundred"},
        "a string",
        {"ip": "198.51.100.3", "tenant_id": "globex"},
        {"ip": "198.51.100.4", "path": "/ok2"},
    ]
    r = await client.post("/v1/logs", json=batch, headers=auth())
    assert r.status == 202
    assert await r.json() == {
        "accepted": 2,
        "rejected": 4,
        "errors": [
            {"index": 1, "field": "ip", "error": "not an IP address"},
            {"index": 2, "field": "status", "error": "must be a whole number"},
            {"index": 3, "field": "", "error": "record must be a JSON object"},
            {"index": 4, "field": "tenant_id", "error": "unknown field"},
        ],
    }
    assert query(client, "SELECT path FROM access_log ORDER BY path") == [
        {"path": "/ok"},
        {"path": "/ok2"},
    ]
    metrics = await (await client.get("/metrics")).text()
    assert 'collector_records_rejected_total{field="ip",kind="access_log"} 1' in metrics
    assert 'collector_records_accepted_total{kind="access_log"} 2' in metrics


async def test_errors_are_capped_at_100(start: AppFactory) -> None:
    client = await start()
    r = await client.post(
        "/v1/logs", json=[{"ip": "x"}] * 150 + [{"ip": "192.0.2.1"}], headers=auth()
    )
    body = await r.json()
    assert (body["accepted"], body["rejected"], len(body["errors"])) == (1, 150, 100)
    assert body["errors_truncated"] is True and body["errors"][-1]["index"] == 99


async def test_tenant_comes_from_the_key(start: AppFactory) -> None:
    client = await start()
    await client.post("/v1/logs", json={"ip": "192.0.2.1", "user_id": "same"}, headers=auth())
    await client.post(
        "/v1/logs", json={"ip": "192.0.2.1", "user_id": "same"}, headers=auth(OTHER_KEY)
    )
    rows = query(
        client,
        "SELECT tenant_id, retention_days, user_pseudonym FROM access_log ORDER BY tenant_id",
    )
    assert [(r["tenant_id"], r["retention_days"]) for r in rows] == [("acme", 395), ("globex", 30)]
    assert rows[0]["user_pseudonym"] != rows[1]["user_pseudonym"]  # per-tenant keys: unlinkable


async def test_geo_uses_full_ip_not_its_prefix(start: AppFactory, geo_db: Path) -> None:
    from collector.config import EnrichConfig

    client = await start(enrich=EnrichConfig(geoip_database=geo_db))
    records = [
        {"ip": "1.2.3.200"},
        {"ip": "1.2.3.4"},
        {"ip": "::ffff:1.2.3.130"},
        {"ip": "2001:db8::1"},
        {"ip": "9.9.9.9"},
    ]
    r = await client.post("/v1/logs", json=records, headers=auth())
    assert (await r.json())["accepted"] == 5
    rows = query(
        client,
        "SELECT ip_prefix, geo_country, geo_region, geo_city FROM access_log ORDER BY time, geo_country",
    )
    got = sorted((r["ip_prefix"], r["geo_country"], r["geo_city"]) for r in rows)
    assert got == sorted(
        [
            (
                "1.2.3.0/24",
                "FR",
                "Paris",
            ),  # the /24's first address is in DE: lookup ran on the full IP
            ("1.2.3.0/24", "DE", "Berlin"),
            ("1.2.3.0/24", "FR", "Paris"),
            ("2001:db8::/48", "JP", "Tokyo"),
            ("9.9.9.0/24", "", ""),
        ]
    )


async def test_without_geoip_database_geo_is_empty(start: AppFactory) -> None:
    client = await start()
    await client.post("/v1/logs", json={"ip": "1.2.3.200"}, headers=auth())
    assert query(client, "SELECT geo_country, geo_city FROM access_log") == [
        {"geo_country": "", "geo_city": ""}
    ]


async def test_old_records_are_rejected_not_silently_expired(start: AppFactory) -> None:
    client = await start()
    old = corpus_lines(shift_to_today=False)[:3]
    r = await client.post(
        "/v1/logs", data="\n".join(old), headers=auth(**{"Content-Type": "text/plain"})
    )
    body = await r.json()
    assert body["accepted"] == 0 and body["errors"][0] == {
        "index": 0,
        "field": "time",
        "error": "older than the retention of 395 days",
    }


async def test_retention_ttl_removes_expired_rows_per_plan(start: AppFactory) -> None:
    """Rows carry their plan's retention_days; the table TTL removes them when it has passed."""
    client = await start()
    await client.post(
        "/v1/logs", json={"ip": "192.0.2.1", "path": "/fresh"}, headers=auth(OTHER_KEY)
    )  # free: 30 days
    sink = client.app[SINK]
    sink.execute(  # a free-plan row written 31 days ago (the collector itself refuses such times)
        "INSERT INTO access_log (tenant_id, time, path, retention_days) "
        "VALUES ('globex', now64(3) - INTERVAL 31 DAY, '/expired', 30), "
        "('acme', now64(3) - INTERVAL 31 DAY, '/kept-standard-plan', 395)"
    )
    sink.execute("OPTIMIZE TABLE access_log FINAL")
    rows = query(client, "SELECT tenant_id, path, retention_days FROM access_log ORDER BY path")
    assert rows == [
        {"tenant_id": "globex", "path": "/fresh", "retention_days": 30},
        {"tenant_id": "acme", "path": "/kept-standard-plan", "retention_days": 395},
    ]
