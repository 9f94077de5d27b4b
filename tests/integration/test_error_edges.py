"""Each dependency's errors are translated once, at the edges: a failing engine is a JSON 503
with Retry-After on every storage-backed endpoint (the errors middleware), and every CLI
command's refusal is one line on stderr with exit 2 (`collector.cli.main`)."""

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.appkeys import SINK
from collector.errors import CollectorError, PolicyRefused
from tests.conftest import PRIVACY_KEY, AppFactory, auth
from tests.integration.test_openapi import check

STORAGE_BACKED = [
    ("get", "/v1/policy/audit", {}),
    ("get", "/v1/reports/{name}", {"path": "/v1/reports/traffic"}),
    ("post", "/v1/subjects/export", {"json": {"user_id": "u-7"}}),
    ("post", "/v1/subjects/delete", {"json": {"user_id": "u-7"}}),
    ("put", "/v1/policy", {"data": b"version = 99\n"}),
]


@pytest.mark.parametrize(("method", "route", "request_args"), STORAGE_BACKED)
async def test_a_failing_engine_is_a_json_503_with_retry_after(
    start: AppFactory,
    caplog: pytest.LogCaptureFixture,
    method: str,
    route: str,
    request_args: dict[str, Any],
) -> None:
    client = await start()
    # one stored row: the subject's pseudonym key exists, so the subject endpoints query
    r = await client.post("/v1/logs", json=[{"ip": "192.0.2.1", "user_id": "u-7"}], headers=auth())
    assert r.status == 202
    client.app[SINK].close()  # the engine goes away under the running service
    args = dict(request_args)
    path = args.pop("path", route)
    with caplog.at_level(logging.ERROR):
        r = await getattr(client, method)(path, headers=auth(PRIVACY_KEY), **args)
    assert r.status == 503, await r.text()
    assert r.headers["Retry-After"] == "5"
    assert await check(r, route, method) == {
        "error": "service unavailable",
        "detail": "storage is failing",
    }
    # logged once, by kind and route only: never the statement, the subject or the key
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "collector.middlewares"]
    assert lines == [f"SinkUnavailable on {method.upper()} {route}"]


async def test_a_refused_put_leaves_the_policy_in_force(start: AppFactory) -> None:
    client = await start()
    before = await (await client.get("/v1/policy", headers=auth(PRIVACY_KEY))).json()
    client.app[SINK].close()
    r = await client.put("/v1/policy", data=b"version = 99\n", headers=auth(PRIVACY_KEY))
    assert r.status == 503
    after = await (await client.get("/v1/policy", headers=auth(PRIVACY_KEY))).json()
    assert after == before


def test_policy_refused_is_in_the_collector_tree() -> None:
    assert issubclass(PolicyRefused, CollectorError)


def collector(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_cli_commands_refuse_a_bad_policy_or_config_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad_policy.toml").write_text('version = "x"\n')
    tenant = '[[tenants]]\nid = "acme"\napi_key_sha256 = []\n'
    (tmp_path / "c.toml").write_text(
        f'[storage]\npath = "d"\n[policy]\nfile = "bad_policy.toml"\n{tenant}'
    )
    (tmp_path / "engine.toml").write_text('[storage]\nengine = "postgres"\n')
    cases = [
        (("keys", "list", "--config", "c.toml"), "bad_policy.toml: version (line 1)"),
        (("keys", "rotate", "--config", "c.toml"), "bad_policy.toml: version (line 1)"),
        (("keys", "shred", "--config", "c.toml", "--before", "x"), "bad_policy.toml: version"),
        (
            ("migrate", "--config", "engine.toml"),
            "storage.engine: must be one of 'embedded', 'clickhouse'",
        ),
        (
            ("scan-pii", "--config", "engine.toml"),
            "storage.engine: must be one of 'embedded', 'clickhouse'",
        ),
        (("sql", "--config", "missing.toml", "SELECT 1"), "cannot read config missing.toml"),
    ]
    for args, message in cases:
        out = collector(*args, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr, args
        assert out.stderr.startswith("collector: ") and message in out.stderr, (args, out.stderr)
        assert out.stderr.count("\n") == 1, (args, out.stderr)
    assert not (tmp_path / "d").exists()  # nothing was opened or created


def test_keys_shred_names_a_bad_date_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[storage]\npath = "d"\n[[tenants]]\nid = "acme"\n')
    out = collector("keys", "shred", "--config", "c.toml", "--before", "31/12/2030", cwd=tmp_path)
    assert (out.returncode, out.stderr) == (
        2,
        "collector: keys shred --before: must be YYYY-MM-DD\n",
    )
