"""`collector serve` on the server engine, as a process: started while its ClickHouse server is
down it listens (healthy, not ready, 503 JSON to ingest), migrates once the server is up, ingests,
answers 503 when the server goes away again, and stops with exit 0 in a bounded time; the
password never reaches its log."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.chserver import running_chserver
from tests.redteam.service import running_service
from tests.redteam.test_disk_full import small_disk

__all__ = ["small_disk"]  # the tmpfs fixture

pytestmark = pytest.mark.slow
PASSWORD = "pw-redteam-0123456789-secret"


async def readyz(s: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with s.get(url + "/readyz") as r:
        return r.status, await r.json()


def _storage(url: str) -> str:
    return (
        f'engine = "clickhouse"\nurl = "{url}"\ndatabase = "rt"\nuser = "collector"\n'
        f'password = "{PASSWORD}"\ntimeout_s = 2'
    )


async def _count(ch: Any, want: int, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            n = ch.query("SELECT count() AS n FROM access_log", database="rt")[0]["n"]
        except Exception:  # the table is not there until the collector migrated
            n = -1
        if n == want:
            return
        assert time.monotonic() < deadline, n
        await asyncio.sleep(0.3)


async def test_the_service_outlives_its_server_with_the_spool(tmp_path: Path) -> None:
    """With the spool (the default) an unreachable server is not a reason to refuse: records
    are acknowledged into the spool, shipped once the server answers and the schema is
    migrated; what waits at SIGTERM is shipped by the next start."""
    with running_chserver(tmp_path / "ch", down=True) as ch:
        ch.set_users({"collector": PASSWORD})
        record = [{"ip": "192.0.2.10", "path": "/"}]
        data = tmp_path / "data"
        async with (
            running_service(tmp_path, storage_extra=_storage(ch.url), data=data) as svc,
            aiohttp.ClientSession() as s,
        ):
            status, body = await readyz(s, svc.url)
            assert status == 200, body
            assert body["shipping"][0].startswith("schema not migrated"), body
            async with s.post(svc.url + "/v1/logs", json=record * 10, headers=svc.headers()) as r:
                assert r.status == 202, await r.text()

            ch.fault("none")  # the server comes up: migrated, then the spool ships
            await _count(ch, 10)

            ch.fault("refuse")  # and goes away again: still acknowledged, into the spool
            async with s.post(svc.url + "/v1/logs", json=record * 5, headers=svc.headers()) as r:
                assert r.status == 202, await r.text()
            t0 = time.monotonic()
            assert await svc.stop() == 0
            assert time.monotonic() - t0 < 30
        ch.fault("none")
        async with running_service(tmp_path, storage_extra=_storage(ch.url), data=data):
            await _count(ch, 15)  # the next start shipped what was left
        assert PASSWORD not in svc.log() and "Traceback" not in svc.log()


async def test_the_service_outlives_its_server(tmp_path: Path) -> None:
    """Without the spool, the 202 waits for the insert: 503 while the server is away."""
    with running_chserver(tmp_path / "ch", down=True) as ch:
        ch.set_users({"collector": PASSWORD})
        storage = (
            f'engine = "clickhouse"\nurl = "{ch.url}"\ndatabase = "rt"\nuser = "collector"\n'
            f'password = "{PASSWORD}"\ntimeout_s = 2'
        )
        async with (
            running_service(
                tmp_path, storage_extra=storage, extra="[spool]\nenabled = false\n"
            ) as svc,
            aiohttp.ClientSession() as s,
        ):
            status, body = await readyz(s, svc.url)
            assert status == 503 and body["reasons"][0].startswith("schema not migrated"), body
            record = [{"ip": "192.0.2.10", "path": "/"}]
            async with s.post(svc.url + "/v1/logs", json=record, headers=svc.headers()) as r:
                assert r.status == 503
                assert (await r.json())["error"] == "service unavailable"

            ch.fault("none")  # the server comes up
            deadline = time.monotonic() + 60
            while (await readyz(s, svc.url))[0] != 200:
                assert time.monotonic() < deadline, await readyz(s, svc.url)
                await asyncio.sleep(0.3)
            async with s.post(svc.url + "/v1/logs", json=record * 50, headers=svc.headers()) as r:
                assert r.status == 202, await r.text()
            assert ch.query("SELECT count() AS n FROM access_log", database="rt") == [{"n": 50}]

            ch.fault("refuse")  # and goes away again
            async with s.post(svc.url + "/v1/logs", json=record, headers=svc.headers()) as r:
                assert r.status == 503 and r.headers["Retry-After"] == "5"
            t0 = time.monotonic()
            assert await svc.stop() == 0
            assert time.monotonic() - t0 < 30
        log = svc.log()
        assert "collector listening on" in log
        assert PASSWORD not in log
        assert "Traceback" not in log


async def test_a_full_disk_on_the_collector_does_not_stop_the_drain_to_a_server(
    tmp_path: Path, small_disk: Path
) -> None:
    """Records spooled while the server is away, then the collector's disk fills up: once the
    server is back, the spool still drains (a server's insert body is built in memory, never in
    a scratch file on the full disk), every acknowledged record stored once."""
    from tests.redteam.test_disk_full import fill

    with running_chserver(tmp_path / "ch") as ch:
        ch.set_users({"collector": PASSWORD})
        async with (
            running_service(
                tmp_path,
                storage_extra=_storage(ch.url),
                data=small_disk / "data",
                extra="[spool]\nsegment_age_ms = 100\n",
            ) as svc,
            aiohttp.ClientSession() as s,
        ):
            deadline = time.monotonic() + 60
            while (await readyz(s, svc.url))[0] != 200:  # migrated
                assert time.monotonic() < deadline, await readyz(s, svc.url)
                await asyncio.sleep(0.3)
            ch.fault("refuse")
            record = [{"ip": "192.0.2.10", "path": "/full-disk"}]
            acked = 0
            for _ in range(20):
                async with s.post(
                    svc.url + "/v1/logs", json=record * 100, headers=svc.headers()
                ) as r:
                    assert r.status == 202, await r.text()
                    acked += (await r.json())["accepted"]
            await asyncio.sleep(0.5)  # every segment sealed (age 100 ms)
            big = fill(small_disk)
            async with s.post(svc.url + "/v1/logs", json=record, headers=svc.headers()) as r:
                assert r.status == 503  # the disk is full: nothing more is accepted
            ch.fault("none")
            await _count(ch, acked)  # drained with the disk still full
            assert big.exists()
            big.unlink()
        assert "Traceback" not in svc.log()
