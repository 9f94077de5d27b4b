"""`/metrics`: what an unauthenticated scraper may see (tenant-free aggregates), and who sees
per-tenant series (the operator's metrics token: all; a tenant key with the metrics or admin
scope: its own)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from collector.auth import hash_key
from collector.config import ApiKeyConfig, Config
from tests.conftest import (
    ADMIN_KEY,
    ANALYST_KEY,
    API_KEY,
    OTHER_KEY,
    AppFactory,
    auth,
    tenants,
)
from tests.integration.test_openapi import check

METRICS_TOKEN = "operator-metrics-token-0123456789"
METRICS_KEY = "tck_test-key-globex-metrics-0123"
GPC = {"event": "checkout", "consent": ["essential", "analytics"], "gpc": True}


def with_metrics_key() -> tuple[Any, ...]:
    return tuple(
        replace(t, keys=(*t.keys, ApiKeyConfig(hash_key(METRICS_KEY), frozenset({"metrics"}))))
        if t.id == "globex"
        else t
        for t in tenants()
    )


async def started(start: AppFactory, config: Config) -> Any:
    server = replace(config.server, metrics_token_sha256=hash_key(METRICS_TOKEN))
    client = await start(server=server, tenants=with_metrics_key())
    for key, n in ((API_KEY, 2), (OTHER_KEY, 3)):
        r = await client.post("/v1/events", json=[GPC] * n, headers=auth(key))
        assert r.status == 202
    return client


async def scrape(client: Any, key: str | None) -> tuple[int, Any]:
    headers = auth(key) if key else {}
    r = await client.get("/metrics", headers=headers)
    return r.status, await check(r, "/metrics", "get")


async def test_public_metrics_name_no_tenant(start: AppFactory, config: Config) -> None:
    client = await started(start, config)
    status, text = await scrape(client, None)
    assert status == 200
    assert 'collector_records_consent_limited_total{kind="event",reason="gpc"} 5' in text
    assert "tenant" not in text and "acme" not in text and "globex" not in text
    assert re.search(r'collector_records_accepted_total\{kind="event"\} 5\b', text)


async def test_operator_token_sees_every_tenant(start: AppFactory, config: Config) -> None:
    client = await started(start, config)
    status, text = await scrape(client, METRICS_TOKEN)
    assert status == 200
    per_tenant = "collector_tenant_records_consent_limited_total"
    assert f'{per_tenant}{{kind="event",reason="gpc",tenant="acme"}} 2' in text
    assert f'{per_tenant}{{kind="event",reason="gpc",tenant="globex"}} 3' in text


async def test_a_tenant_key_sees_its_own_tenant_only(start: AppFactory, config: Config) -> None:
    client = await started(start, config)
    for key, own, other in ((ADMIN_KEY, "acme", "globex"), (METRICS_KEY, "globex", "acme")):
        status, text = await scrape(client, key)
        assert status == 200
        assert f'tenant="{own}"' in text and other not in text, key


async def test_other_credentials_are_refused_not_downgraded(
    start: AppFactory, config: Config
) -> None:
    client = await started(start, config)
    for key, status, error in (
        (API_KEY, 403, "forbidden"),
        (ANALYST_KEY, 403, "forbidden"),
        ("tck_not-a-key", 401, "unauthorized"),
        ("operator-metrics-token-012345678", 401, "unauthorized"),
    ):
        got, body = await scrape(client, key)
        assert (got, body["error"]) == (status, error), key
        assert key not in str(body)
    r = await client.get("/metrics", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status == 401 and "dXNlcjpwYXNz" not in await r.text()


FAMILIES = {  # every family the service exposes, named as before prometheus_client
    "counter": [
        "collector_records_received_total", "collector_records_accepted_total",
        "collector_records_rejected_total", "collector_fields_dropped_total",
        "collector_records_consent_limited_total", "collector_policy_reloads_total",
        "collector_tenant_records_consent_limited_total", "collector_background_errors_total",
        "collector_insert_errors_total", "collector_salt_sweep_errors_total",
        "collector_salts_destroyed_total", "collector_records_outcomes_total",
        "collector_tenant_records_outcomes_total",
    ],
    "gauge": [
        "collector_queued_rows", "collector_flushed_batches", "collector_idempotency_file_bytes",
        "collector_idempotency_live_bytes", "collector_idempotency_evicted_keys",
        "collector_storage_failing", "collector_salt_sweep_failing", "collector_salts_overdue",
    ],
}  # fmt: skip


async def test_every_family_has_help_and_type_and_its_name(
    start: AppFactory, config: Config
) -> None:
    client = await started(start, config)
    status, text = await scrape(client, METRICS_TOKEN)
    assert status == 200
    lines = text.splitlines()
    types = dict(ln.split()[2:4] for ln in lines if ln.startswith("# TYPE "))
    helps = [ln.split()[2] for ln in lines if ln.startswith("# HELP ")]
    assert sorted(helps) == sorted(types)
    assert {kind: sorted(n for n, k in types.items() if k == kind) for kind in FAMILIES} == {
        kind: sorted(names) for kind, names in FAMILIES.items()
    }
    for line in lines:  # every sample belongs to a described family
        if line and not line.startswith("#"):
            assert re.split(r"[{ ]", line, maxsplit=1)[0] in types, line
