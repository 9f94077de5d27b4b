"""Two collector processes sharing one key and salt store (`[storage] keys_dir`, `salts_dir`),
each with its own engine and the store sealed under one master key, as two collectors in front of one ClickHouse server would run: the same
input gives the same pseudonyms and visitor ids in both; a rotation or a shred by one reaches the
other. Rows are read back with `collector sql` through each running service (the admin key in
COLLECTOR_API_KEY), which also shows that a read works while the service holds its engine and
that anything else is refused."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.redteam.service import ADMIN_KEY, PRIVACY_KEY, Service, running_service

pytestmark = pytest.mark.slow
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def records(tag: str) -> list[dict[str, Any]]:
    return [
        {"ip": f"203.0.113.{i}", "user_id": f"user-{i}", "user_agent": AGENT, "path": f"/{tag}"}
        for i in range(1, 6)
    ]


async def cli(*args: str, key: str | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_API_KEY"}
    if key is not None:
        env["COLLECTOR_API_KEY"] = key
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def stored(svc: Service, tag: str, want: int = 5) -> list[dict[str, Any]]:
    """The rows of `tag` once all `want` are stored: the 202 comes after the spool's fsync, and
    the shipper inserts shortly after."""
    deadline = time.monotonic() + 30
    while True:
        code, out, err = await cli(
            "sql", "--config", str(svc.config),
            "SELECT ip_prefix, user_pseudonym, visitor_id FROM access_log "
            f"WHERE path = '/{tag}' ORDER BY ip_prefix",
            key=ADMIN_KEY,
        )  # fmt: skip
        assert code == 0, err
        rows = [orjson.loads(line) for line in out.splitlines()]
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def post(s: aiohttp.ClientSession, svc: Service, tag: str) -> None:
    async with s.post(svc.url + "/v1/logs", json=records(tag), headers=svc.headers()) as r:
        assert r.status == 202, await r.text()


async def export(s: aiohttp.ClientSession, svc: Service, user: str) -> dict[str, Any]:
    headers = svc.headers(PRIVACY_KEY)
    async with s.post(
        svc.url + "/v1/subjects/export", json={"user_id": user}, headers=headers
    ) as r:
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


def shared_files(tmp_path: Path) -> list[bytes]:
    """The key and salt files in the shared store."""
    paths = [*tmp_path.glob("shared/keys/acme/*.key"), *tmp_path.glob("shared/salts/*.salt")]
    return [p.read_bytes() for p in paths]


@asynccontextmanager
async def two_collectors(tmp_path: Path) -> AsyncIterator[tuple[Service, Service]]:
    shared = tmp_path / "shared"
    master = tmp_path / "master.key"  # elsewhere than the shared folder: a secret file
    master.write_bytes(os.urandom(32).hex().encode())
    storage = (
        f'keys_dir = "{shared / "keys"}"\nsalts_dir = "{shared / "salts"}"\n'
        f'master_key_file = "{master}"'
    )
    async with AsyncExitStack() as stack:
        services = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            services.append(
                await stack.enter_async_context(
                    running_service(tmp_path / name, storage_extra=storage)
                )
            )
        yield services[0], services[1]


async def test_two_collectors_agree_and_follow_each_others_rotation_and_shred(
    tmp_path: Path,
) -> None:
    async with two_collectors(tmp_path) as (a, b), aiohttp.ClientSession() as s:
        await post(s, a, "first")
        await post(s, b, "first")
        in_a, in_b = await stored(a, "first"), await stored(b, "first")
        assert len(in_a) == 5 and in_a == in_b  # same pseudonyms, same visitor ids
        assert all(r["user_pseudonym"] and r["visitor_id"] for r in in_a)
        assert not (a.data / "keys").exists() and not (a.data / "salts").exists()
        shared = shared_files(tmp_path)
        assert len(shared) == 2 and all(data.startswith(b"TCS1") for data in shared)  # sealed

        code, out, err = await cli("keys", "rotate", "--config", str(a.config), "--tenant", "acme")
        assert code == 0, err
        await post(s, a, "rotated")
        await post(s, b, "rotated")  # b never heard of the rotation but through the store
        after_a, after_b = await stored(a, "rotated"), await stored(b, "rotated")
        assert after_a == after_b
        assert {r["user_pseudonym"] for r in after_a}.isdisjoint(r["user_pseudonym"] for r in in_a)
        assert [r["visitor_id"] for r in after_a] == [r["visitor_id"] for r in in_a]  # same day
        assert (await export(s, b, "user-1"))["rows"] == 2  # both epochs still held

        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
        code, out, err = await cli(
            "keys", "shred", "--config", str(a.config), "--tenant", "acme", "--before", tomorrow
        )
        assert code == 0 and "shredded 1 keys" in out, out + err
        await asyncio.sleep(1.1)  # keys.RECHECK_S: b forgets the shredded key from memory
        for svc in (a, b):
            found = await export(s, svc, "user-1")
            assert found["rows"] == 1 and len(found["epochs_searched"]) == 1

        # read-only, while the services run: writes and keyless calls are refused
        code, _, err = await cli(
            "sql", "--config", str(b.config), "DROP TABLE access_log", key=ADMIN_KEY
        )
        assert code == 2 and "only reads run here" in err
        code, _, err = await cli("sql", "--config", str(b.config), "SELECT 1")
        assert code == 2 and "give an admin key in COLLECTOR_API_KEY" in err
        code, out, err = await cli(
            "sql", "--config", str(b.config), "--format", "table",
            "SELECT count() AS n FROM access_log", key=ADMIN_KEY,
        )  # fmt: skip
        assert code == 0 and out.splitlines()[2].strip() == "10", out + err
        code, out, err = await cli(
            "sql", "--config", str(a.config), "SELECT 'carol.marker@example.com' AS m",
            key=ADMIN_KEY,
        )  # fmt: skip
        assert code == 0 and "carol.marker@example.com" in out, err
        for svc in (a, b):
            assert "Traceback" not in svc.log()
            assert "carol.marker" not in svc.log()  # statements are never logged
            for r in records("x"):
                assert r["ip"] not in svc.log() and r["user_id"] not in svc.log()
