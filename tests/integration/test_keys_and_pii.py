"""Key rotation and shredding through the CLI, visitor ids, and the PII scanner over everything
the end-to-end tests store."""

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

from collector.app import create_app
from collector.appkeys import SINK
from collector.config import Config
from collector.scan_pii import scan
from tests.conftest import OTHER_KEY, auth, corpus_lines, query
from tests.integration.test_kinds import BARS, ROUTING, TRACKING

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, config: Config) -> Path:
    path = tmp_path / "collector.toml"
    tenants = "".join(
        f'[[tenants]]\nid = "{t.id}"\nplan = "{t.plan}"\napi_key_sha256 = {list(t.api_key_sha256)!r}\n'.replace(
            "'", '"'
        )
        for t in config.tenants
    )
    path.write_text(
        f'[storage]\npath = "{config.storage.path}"\n[policy]\nfile = "{config.policy_file}"\n{tenants}'
    )
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args], capture_output=True, text=True, timeout=120
    )


async def test_rotate_and_shred_unlink_pseudonyms(
    aiohttp_client: Any, config: Config, tmp_path: Path
) -> None:
    config_file = write_config(tmp_path, config)
    client = await aiohttp_client(create_app(config))
    await client.post("/v1/logs", json={"ip": "192.0.2.1", "user_id": "ursula"}, headers=auth())
    first = query(client, "SELECT user_pseudonym, key_epoch FROM access_log")[0]

    out = cli("keys", "rotate", "--config", str(config_file), "--tenant", "acme")  # while serving
    assert out.returncode == 0 and "new key generation 1" in out.stdout, out.stderr
    await client.post("/v1/logs", json={"ip": "192.0.2.1", "user_id": "ursula"}, headers=auth())
    rows = query(client, "SELECT user_pseudonym, key_epoch FROM access_log ORDER BY key_epoch")
    assert rows[1]["key_epoch"] == first["key_epoch"] + ".g1"
    assert rows[1]["user_pseudonym"] != first["user_pseudonym"]
    await client.close()

    old_key = config.storage.keys_path / "acme" / f"{first['key_epoch']}.key"
    assert old_key.exists()
    out = cli("keys", "shred", "--config", str(config_file), "--before", "2999-01-01")
    assert out.returncode == 0 and f"acme: shredded 1 keys: {first['key_epoch']}" in out.stdout, (
        out.stdout + out.stderr
    )
    assert not old_key.exists()
    listing = cli("keys", "list", "--config", str(config_file)).stdout
    assert "in force" in listing and first["key_epoch"] + ".g1" in listing


async def test_daily_visitor_id(aiohttp_client: Any, config: Config, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('version = 1\n[identifiers]\nvisitor_id = "daily"\n')
    from dataclasses import replace

    client = await aiohttp_client(create_app(replace(config, policy_file=policy)))
    ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"
    for ip, agent in (
        ("192.0.2.1", ua),
        ("192.0.2.1", ua),
        ("192.0.2.2", ua),
        ("192.0.2.1", "curl/8"),
    ):
        await client.post("/v1/logs", json={"ip": ip, "user_agent": agent}, headers=auth())
    await client.post(
        "/v1/logs", json={"ip": "192.0.2.1", "user_agent": ua}, headers=auth(OTHER_KEY)
    )
    rows = query(client, "SELECT tenant_id, visitor_id FROM access_log")
    acme = [r["visitor_id"] for r in rows if r["tenant_id"] == "acme"]
    assert all(len(v) == 32 for v in acme) and len(set(acme)) == 3  # same IP+UA: one visitor
    globex = [r["visitor_id"] for r in rows if r["tenant_id"] == "globex"]
    assert globex[0] not in acme  # never linkable across tenants
    assert query(
        client, "SELECT uniqExact(visitor_id) AS u FROM access_log WHERE tenant_id = 'acme'"
    ) == [{"u": 3}]


async def test_scan_pii_after_end_to_end_ingest(
    aiohttp_client: Any, config: Config, tmp_path: Path
) -> None:
    """Everything the product ingests, every kind, then the scanner over every string column."""
    client = await aiohttp_client(create_app(config))
    lines = corpus_lines()[:3000]
    body = gzip.compress("\n".join(lines).encode())
    r = await client.post(
        "/v1/logs",
        data=body,
        headers=auth(**{"Content-Type": "text/plain", "Content-Encoding": "gzip"}),
    )
    assert (await r.json())["accepted"] == 3000
    samples = ["user-7781", "sess-991", "dev-7781", "987654321", "kim@example.com"]
    await client.post("/v1/logs", json=[{"ip": "2001:db8:55::77", "user_id": "user-7781", "session_id": "sess-991",
                                         "path": "/u/kim@example.com", "referrer": "http://203.0.113.50/x"}], headers=auth())  # fmt: skip
    await client.post(
        "/v1/devices",
        json=[{"device_id": "dev-7781", "user_id": "user-7781", "ip": "203.0.113.51"}],
        headers=auth(),
    )
    await client.post("/v1/events", json=[{"event": "e", "user_id": "user-7781", "consent": ["analytics"],
                                           "properties": {"mail": "kim@example.com", "tel": "+44 20 7946 0958", "ip": "203.0.113.52"}}], headers=auth())  # fmt: skip
    await client.post(
        "/v1/mail-scans", json=[{"imb": TRACKING + ROUTING}, {"imb": BARS}], headers=auth()
    )
    findings, scanned = scan(client.app[SINK], samples + [ln.split(" ", 1)[0] for ln in lines])
    assert scanned > 40
    assert findings == []

    # the scanner does find what must not be there
    client.app[SINK].execute("INSERT INTO usage_events (tenant_id, time, event, properties, retention_days) VALUES "
                             "('acme', now64(3), 'leak', map('k', 'kim@example.com and 203.0.113.52'), 30)")  # fmt: skip
    client.app[SINK].execute(
        f"INSERT INTO mail_scans (tenant_id, time, event, retention_days) VALUES ('acme', now64(3), '{TRACKING + ROUTING}', 30)"
    )
    found, _ = scan(client.app[SINK], samples)
    assert {(f.table, f.column, f.check) for f in found} == {
        ("usage_events", "properties", "email"), ("usage_events", "properties", "ip"),
        ("mail_scans", "event", "imb_digits"), ("mail_scans", "event", "id"),
        # the view carried the leak into the rollup too
        ("mail_daily", "event", "imb_digits"), ("mail_daily", "event", "id"),
    }  # fmt: skip
    config_file = write_config(tmp_path, config)
    await client.close()
    out = cli("scan-pii", "--config", str(config_file))
    assert (
        out.returncode == 1 and "usage_events.properties" in out.stdout and "kim@" not in out.stdout
    )
