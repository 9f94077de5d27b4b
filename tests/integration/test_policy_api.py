"""The privacy team's API: scopes, the effective policy, changes with their audit trail, reload."""

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from collector.app import create_app
from collector.appkeys import PIPELINE, SINK
from collector.config import Config
from collector.policy_api import MAX_POLICY_BYTES, reload_policies
from tests.conftest import (
    ADMIN_KEY,
    ANALYST_KEY,
    API_KEY,
    OTHER_KEY,
    OTHER_PRIVACY_KEY,
    PRIVACY_KEY,
    AppFactory,
    auth,
    query,
)

OVERRIDE = "version = 2\n[ip]\nipv4_prefix = 16\n"


async def put(client: Any, text: str, key: str = PRIVACY_KEY) -> Any:
    return await client.put(
        "/v1/policy", data=text.encode(), headers=auth(key, **{"Content-Type": "application/toml"})
    )


@pytest.mark.parametrize(
    ("method", "path", "key", "status"),
    [
        ("GET", "/v1/policy", API_KEY, 403),
        ("GET", "/v1/policy", ANALYST_KEY, 200),
        ("GET", "/v1/policy", PRIVACY_KEY, 200),
        ("GET", "/v1/policy", ADMIN_KEY, 200),
        ("GET", "/v1/policy/audit", ANALYST_KEY, 403),
        ("GET", "/v1/policy/audit", PRIVACY_KEY, 200),
        ("PUT", "/v1/policy", ANALYST_KEY, 403),
        ("PUT", "/v1/policy", API_KEY, 403),
        ("POST", "/v1/logs", PRIVACY_KEY, 403),
        ("POST", "/v1/logs", ANALYST_KEY, 403),
        ("POST", "/v1/logs", ADMIN_KEY, 202),
    ],
)
async def test_scopes(start: AppFactory, method: str, path: str, key: str, status: int) -> None:
    client = await start()
    body = b"version = 5\n" if method == "PUT" else b'{"ip": "192.0.2.1"}'
    r = await client.request(
        method, path, data=body, headers=auth(key, **{"Content-Type": "application/json"})
    )
    assert r.status == status, await r.text()
    if status == 403:
        assert (await r.json())["error"] == "forbidden"


async def test_get_effective_policy(start: AppFactory) -> None:
    client = await start()
    body = await (await client.get("/v1/policy", headers=auth(ANALYST_KEY))).json()
    assert body["tenant_id"] == "acme" and body["version"] == 1 and body["tenant_override"] is None
    assert (
        body["settings"]["ip.ipv4_prefix"] == 24
        and body["settings"]["retention.plans"]["free"] == 30
    )
    assert "[ip]" in body["default_policy"]


async def test_put_changes_only_that_tenant_and_is_audited(start: AppFactory) -> None:
    client = await start()
    r = await put(client, OVERRIDE)
    assert r.status == 200, await r.text()
    assert await r.json() == {
        "tenant_id": "acme",
        "old_version": 1,
        "new_version": 2,
        "diff": ["version: 1 -> 2", "ip.ipv4_prefix: 24 -> 16"],
    }
    await client.post("/v1/logs", json={"ip": "198.51.100.9"}, headers=auth())
    await client.post("/v1/logs", json={"ip": "198.51.100.9"}, headers=auth(OTHER_KEY))
    rows = query(
        client, "SELECT tenant_id, ip_prefix, policy_version FROM access_log ORDER BY tenant_id"
    )
    assert rows == [
        {"tenant_id": "acme", "ip_prefix": "198.51.0.0/16", "policy_version": 2},
        {"tenant_id": "globex", "ip_prefix": "198.51.100.0/24", "policy_version": 1},
    ]
    audit = await (await client.get("/v1/policy/audit", headers=auth(PRIVACY_KEY))).json()
    latest = audit["entries"][0]
    assert (latest["source"], latest["old_version"], latest["new_version"]) == ("api", 1, 2)
    assert (
        latest["actor"]
        == __import__("collector.auth", fromlist=["hash_key"]).hash_key(PRIVACY_KEY)[:12]
    )
    assert latest["diff"] == "version: 1 -> 2\nip.ipv4_prefix: 24 -> 16"
    other = await (await client.get("/v1/policy/audit", headers=auth(OTHER_PRIVACY_KEY))).json()
    assert all(e["source"] != "api" for e in other["entries"])  # tenants see only their own trail


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            "version = 3\n[ip]\nipv4_prefix = 40\n",
            "ip.ipv4_prefix (line 3): must be a whole number from 0 to 24",
        ),
        ("version = 3\n[ip]\nipv4_prefx = 16\n", "ip.ipv4_prefx (line 3): unknown key"),
        ("version = 1\n", "version must be higher than the version in force (1)"),
        ("version = 3\n[ip\n", "not valid TOML"),
    ],
)
async def test_bad_policy_is_refused_and_old_stays(
    start: AppFactory, text: str, detail: str
) -> None:
    client = await start()
    r = await put(client, text)
    assert r.status == 422
    assert detail in (await r.json())["detail"]
    await client.post("/v1/logs", json={"ip": "198.51.100.9"}, headers=auth())
    assert query(client, "SELECT ip_prefix, policy_version FROM access_log") == [
        {"ip_prefix": "198.51.100.0/24", "policy_version": 1}
    ]


async def test_override_survives_restart(aiohttp_client: Any, config: Config) -> None:
    first = await aiohttp_client(create_app(config))
    assert (await put(first, OVERRIDE)).status == 200
    await first.close()
    second = await aiohttp_client(create_app(config))
    body = await (await second.get("/v1/policy", headers=auth(PRIVACY_KEY))).json()
    assert body["version"] == 2 and body["tenant_override"] == OVERRIDE
    entries = (await (await second.get("/v1/policy/audit", headers=auth(PRIVACY_KEY))).json())[
        "entries"
    ]
    assert [e["source"] for e in entries].count("api") == 1  # no new "found at start" entry


async def test_file_reload_bad_file_keeps_old_good_file_is_audited(
    start: AppFactory, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("version = 1\n")
    client = await start(policy_file=policy)
    policy.write_text("version = 2\n[geo]\ngranularity = 'street'\n")
    assert await reload_policies(client.app) == []
    assert client.app[PIPELINE].policies.for_tenant("acme").version == 1
    policy.write_text("version = 3\n[geo]\ngranularity = 'country'\n")
    changes = await reload_policies(client.app)
    assert {c.tenant_id for c in changes} == {"acme", "globex"}
    rows = query(
        client,
        "SELECT tenant_id, actor, source, new_version, diff FROM policy_audit WHERE new_version = 3 ORDER BY tenant_id",
    )
    assert rows == [
        {
            "tenant_id": t,
            "actor": "file",
            "source": "file",
            "new_version": 3,
            "diff": "version: 1 -> 3\ngeo.granularity: 'city' -> 'country'",
        }
        for t in ("acme", "globex")
    ]


async def test_sighup_reloads(start: AppFactory, tmp_path: Path) -> None:
    import asyncio
    import os

    policy = tmp_path / "policy.toml"
    policy.write_text("version = 1\n")
    client = await start(policy_file=policy)
    policy.write_text("version = 4\n")
    # the app's handler must be in place, or SIGHUP's default action would end the test run
    assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(100):
        await asyncio.sleep(0.02)
        if client.app[PIPELINE].policies.for_tenant("acme").version == 4:
            break
    assert client.app[PIPELINE].policies.for_tenant("acme").version == 4


async def test_unknown_fields_dropped_and_counted_when_policy_says_so(
    start: AppFactory, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('version = 1\n[records]\nunknown_fields = "drop"\n')
    client = await start(policy_file=policy)
    r = await client.post(
        "/v1/logs", json={"ip": "192.0.2.1", "email": "a@b.c", "ssn": "123"}, headers=auth()
    )
    assert await r.json() == {"accepted": 1, "rejected": 0, "errors": []}
    metrics = await (await client.get("/metrics")).text()
    assert 'collector_fields_dropped_total{kind="access_log"} 2' in metrics
    columns = query(
        client,
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'access_log'",
    )
    assert not {"email", "ssn"} & {c["name"] for c in columns}


async def test_reload_is_refused_when_its_audit_rows_cannot_be_written(
    start: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Audit first: with storage failing no row can be stamped with a version that has no
    audit row, because the version is not put in force at all."""
    policy = tmp_path / "policy.toml"
    policy.write_text("version = 1\n")
    client = await start(policy_file=policy)
    policy.write_text("version = 2\n[ip]\nipv4_prefix = 16\n")
    client.app[SINK].close()  # storage fails under the running service
    assert await reload_policies(client.app) == []
    store = client.app[PIPELINE].policies
    assert store.for_tenant("acme").version == 1
    assert store.for_tenant("acme").ip.ipv4_prefix == 24
    assert "policy reload refused, the policies in force stay: its audit rows" in caplog.text
    metrics = await (await client.get("/metrics")).text()
    assert 'collector_policy_reloads_total{outcome="refused_audit"} 1' in metrics
    assert not store.changing.locked()


async def test_reload_outcomes_are_counted(start: AppFactory, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("version = 1\n")
    client = await start(policy_file=policy)
    policy.write_text("version = 2\n[nope]\n")
    assert await reload_policies(client.app) == []
    policy.write_text("version = 2\n")
    assert len(await reload_policies(client.app)) == 2
    rows = query(client, "SELECT count() AS n FROM policy_audit WHERE new_version = 2")
    assert rows == [{"n": 2}]
    metrics = await (await client.get("/metrics")).text()
    assert 'collector_policy_reloads_total{outcome="refused_invalid"} 1' in metrics
    assert 'collector_policy_reloads_total{outcome="applied"} 1' in metrics


async def test_put_reads_a_body_that_arrives_in_pieces(start: AppFactory) -> None:
    """A chunked body sent in two pieces with a pause between: all of it is the policy (one
    partial read once applied only the first piece, with 200)."""
    client = await start()
    pieces = [b"version = 2\n", b"[ip]\nipv4_prefix = 16\n"]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
            await asyncio.sleep(0.2)

    r = await client.put(
        "/v1/policy", data=body(), headers=auth(PRIVACY_KEY, **{"Content-Type": "application/toml"})
    )
    assert r.status == 200, await r.text()
    assert r.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert "ip.ipv4_prefix: 24 -> 16" in (await r.json())["diff"]
    view = await (await client.get("/v1/policy", headers=auth(PRIVACY_KEY))).json()
    assert view["tenant_override"] == b"".join(pieces).decode()
    assert view["settings"]["ip.ipv4_prefix"] == 16


async def test_put_over_the_size_limit_in_pieces_is_413(start: AppFactory) -> None:
    client = await start()

    async def body() -> AsyncIterator[bytes]:
        yield b"version = 2\n"
        for _ in range(20):
            await asyncio.sleep(0)
            yield b"#" * 4095 + b"\n"

    r = await client.put(
        "/v1/policy", data=body(), headers=auth(PRIVACY_KEY, **{"Content-Type": "application/toml"})
    )
    assert r.status == 413 and (await r.json())["error"] == "payload too large"
    view = await (await client.get("/v1/policy", headers=auth(PRIVACY_KEY))).json()
    assert view["version"] == 1 and view["tenant_override"] is None
    r = await client.put(
        "/v1/policy",
        data=b"version = 2\n" + b"#" * (MAX_POLICY_BYTES - 12),
        headers=auth(PRIVACY_KEY, **{"Content-Type": "application/toml"}),
    )
    assert r.status == 200, await r.text()  # exactly the limit
