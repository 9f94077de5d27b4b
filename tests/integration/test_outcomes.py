"""Rejections visible to the sender and the operator: `GET /v1/outcomes`, the per-tenant
`/metrics` outcome counts, and one rate-limited log line per request that rejected anything."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonymizer.errors import RecordInvalid
from collector.config import Config
from collector.reasons import REASONS, reason_code
from tests.conftest import (
    ADMIN_KEY,
    ANALYST_KEY,
    API_KEY,
    OTHER_KEY,
    AppFactory,
    auth,
    query,
    tenants,
)
from tests.integration.test_openapi import check

TODAY = time.strftime("%Y-%m-%d", time.gmtime())
SECRET_IP = "198.51.100.77"
LOGS = [
    {"ip": "203.0.113.7", "path": "/", "status": 200},
    {"ip": "203.0.113.8", "path": "/a", "status": 200},
    {"ip": SECRET_IP, "path": "/", "email": "jane@example.com"},  # unknown field
    {"ip": "203.0.113.9", "status": "teapot"},  # invalid value
    {"path": "/"},  # missing ip
]
DROPPED = {"event": "checkout", "consent": ["essential"]}  # no analytics consent


async def started(start: AppFactory, config: Config, tmp_path: Path) -> Any:
    overrides = tmp_path / "policies"
    overrides.mkdir()
    (overrides / "acme.toml").write_text('[consent]\nanalytics_without_consent = "drop"\n')
    client = await start(policy_tenant_dir=overrides)
    r = await client.post("/v1/logs", json=LOGS, headers=auth())
    assert r.status == 202 and (await r.json())["rejected"] == 3
    r = await client.post("/v1/events", json=[DROPPED] * 2, headers=auth())
    assert r.status == 202
    r = await client.post("/v1/logs", json=LOGS[:1], headers=auth(OTHER_KEY))
    assert r.status == 202
    return client


async def outcomes(client: Any, key: str, **params: str) -> tuple[int, Any]:
    r = await client.get("/v1/outcomes", params=params, headers=auth(key))
    return r.status, await check(r, "/v1/outcomes", "get")


def counts(body: Any) -> dict[tuple[str, str, str], int]:
    return {(r["kind"], r["outcome"], r["reason"]): r["count"] for r in body["rows"]}


async def test_outcomes_by_kind_outcome_and_reason_for_the_callers_tenant(
    start: AppFactory, config: Config, tmp_path: Path
) -> None:
    client = await started(start, config, tmp_path)
    for key in (API_KEY, ANALYST_KEY):  # the ingest and the analyst scope: their own tenant
        status, body = await outcomes(client, key)
        assert status == 200
        assert counts(body) == {
            ("access_log", "accepted", ""): 2,
            ("access_log", "rejected", "unknown_field"): 1,
            ("access_log", "rejected", "invalid_value"): 1,
            ("access_log", "rejected", "missing_field"): 1,
            ("event", "filtered", "no_consent"): 2,
        }
        assert {r["day"] for r in body["rows"]} == {TODAY}
    status, body = await outcomes(client, OTHER_KEY)
    assert counts(body) == {("access_log", "accepted", ""): 1}  # never the other tenant's
    status, body = await outcomes(client, API_KEY, interval="hour")
    assert status == 200 and all(r["hour"].startswith(TODAY + "T") for r in body["rows"])
    assert sum(r["count"] for r in body["rows"]) == 7
    # one row per key per flush, never one per record; a second request adds to the sums
    await client.post("/v1/logs", json=LOGS, headers=auth())
    _, body = await outcomes(client, API_KEY)
    assert counts(body)[("access_log", "rejected", "unknown_field")] == 2
    stored = query(client, "SELECT count() AS n, sum(count) AS s FROM outcomes")
    assert stored[0]["n"] <= 12 and int(stored[0]["s"]) == 13


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-13-01"},
        {"from": "2026-02-02", "to": "2026-02-01"},
        {"interval": "week"},
        {"tenant": "globex"},
    ],
)
async def test_outcomes_refuses_bad_parameters(start: AppFactory, params: dict[str, str]) -> None:
    client = await start()
    status, body = await outcomes(client, API_KEY, **params)
    assert status == 400 and "globex" not in body["detail"]


async def test_metrics_count_outcomes_by_tenant_kind_and_reason(
    start: AppFactory, config: Config, tmp_path: Path
) -> None:
    client = await started(start, config, tmp_path)
    public = await (await client.get("/metrics")).text()
    assert (
        'collector_records_outcomes_total{kind="access_log",outcome="rejected",'
        'reason="unknown_field"} 1.0' in public
    )
    assert "acme" not in public
    own = await (await client.get("/metrics", headers=auth(ADMIN_KEY))).text()
    assert (
        'collector_tenant_records_outcomes_total{kind="event",outcome="filtered",'
        'reason="no_consent",tenant="acme"} 2.0' in own
    )
    assert 'tenant="globex"' not in own


async def test_a_log_line_per_rejecting_request_without_values(
    start: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await start()
    with caplog.at_level(logging.WARNING, logger="collector.outcomes"):
        await client.post("/v1/logs", json=LOGS, headers=auth())
        await client.post("/v1/logs", json=LOGS[:2], headers=auth())  # nothing rejected
    lines = [r.getMessage() for r in caplog.records if r.name == "collector.outcomes"]
    assert lines == [
        "rejected 3 of 5 records on /v1/logs for tenant acme; "
        "first: index 2, field <unknown>, reason unknown_field"
    ]
    assert getattr(caplog.records[-1], "log_limit_key", None) == ("rejected", "acme")
    assert SECRET_IP not in caplog.text and "jane" not in caplog.text


@given(field=st.text(max_size=20), error=st.text(max_size=80))
def test_every_rejection_maps_onto_a_fixed_reason(field: str, error: str) -> None:
    assert reason_code(RecordInvalid(field, error)) in REASONS


async def test_records_refused_by_the_rate_limit_are_counted(start: AppFactory) -> None:
    limited = tuple(
        replace(t, max_records_per_second=1) if t.id == "acme" else t for t in tenants()
    )
    client = await start(tenants=limited)
    # a burst of 2 s (2 records) is allowed, and one request may overdraw it
    assert (await client.post("/v1/logs", json=LOGS[:2] * 3, headers=auth())).status == 202
    r = await client.post("/v1/logs", json=LOGS[:2], headers=auth())
    assert r.status == 429
    _, body = await outcomes(client, API_KEY)
    assert counts(body) == {
        ("access_log", "accepted", ""): 6,
        ("access_log", "rate_limited", ""): 2,
    }
