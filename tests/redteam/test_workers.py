"""`collector serve --workers 2` as a sender sees it: one port, two processes (a primary holding
the engine, an ingest worker with its own spool); Idempotency-Keys and a tenant's rate limit
hold across them; reports and subjects answered through either; a worker killed -9 is restarted
and its spool shipped; SIGTERM to the supervisor stops all, exit 0, every acknowledged record
stored."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.redteam.service import PRIVACY_KEY, Service, running_service
from tests.redteam.test_crash import JSON, stored_per_request

pytestmark = pytest.mark.slow
# appended right after the last [[tenants]] table (globex): gives it a limit, then the spool
EXTRA = "max_records_per_second = 100\n[spool]\nsegment_age_ms = 1000\n"


def children(pid: int) -> list[int]:
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in text:
            out.append(int(status.parent.name))
    return out


def listening(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on `port` (SO_REUSEPORT: each its own)."""
    listen: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[1].rsplit(":", 1)[1] == f"{port:04X}" and f[3] == "0A":
                    listen.add(f"socket:[{f[9]}]")
    try:
        fds = [os.readlink(p) for p in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return not listen.isdisjoint(fds)


def up(svc: Service, worker_spool: Path, gone: int) -> bool:
    procs = children(svc.pid)
    return (
        len(procs) == 2
        and gone not in procs
        and worker_spool.is_dir()
        and all(listening(p, svc.port) for p in procs)
    )


async def started(svc: Service, worker_spool: Path, within_s: float = 120, gone: int = 0) -> None:
    """Both processes up (not `gone`) and listening: the worker made its spool and holds its own
    socket on the port (the primary answers /healthz before the worker starts)."""
    t0 = time.monotonic()
    while not await asyncio.to_thread(up, svc, worker_spool, gone):
        assert time.monotonic() - t0 < within_s, "the ingest worker did not start"
        await asyncio.sleep(0.2)


def records(tag: str, n: int = 10, ip: str = "192.0.2.1") -> bytes:
    return orjson.dumps([{"ip": ip, "path": f"/{tag}", "service": tag}] * n)


async def sql(svc: Service, tmp_path: Path, query: str) -> list[Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "sql", "--config", str(svc.config), query,
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()
    return [orjson.loads(line) for line in out.splitlines()]


async def post(
    s: aiohttp.ClientSession, svc: Service, body: bytes, key: str | None = None, **headers: str
) -> tuple[int, Any]:
    h = svc.headers(**{"Content-Type": JSON, **headers})
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    async with s.post(svc.url + "/v1/logs", data=body, headers=h) as r:
        return r.status, await r.json(content_type=None)


async def test_two_workers_share_one_port_one_key_store_one_limit(tmp_path: Path) -> None:
    acked: dict[str, int] = {}
    first_try: set[str] = set()
    async with running_service(tmp_path, extra=EXTRA, args=("--workers", "2")) as svc:
        # a new connection per request: the kernel spreads them over both processes
        conn = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=conn) as s:
            worker_spool = svc.data / "spool" / "workers" / "w1" / "access_log"
            await started(svc, worker_spool)
            procs = children(svc.pid)
            assert len(procs) == 2, procs
            seen_in_worker = False
            sem = asyncio.Semaphore(6)

            async def send(tag: str, keyed: bool) -> None:
                nonlocal seen_in_worker
                extra = {"Idempotency-Key": tag} if keyed else {}
                async with sem:
                    for attempt in range(100):
                        try:
                            status, body = await post(s, svc, records(tag), **extra)
                        except (aiohttp.ClientError, OSError):
                            status, body = 0, None
                        if status == 202:
                            acked[tag] = body["accepted"]
                            if attempt == 0:
                                first_try.add(tag)
                            break
                        await asyncio.sleep(0.2)
                    seen_in_worker |= any(worker_spool.glob("*"))

            # 1. plain and keyed ingest, keyed ones sent twice: stored once
            await asyncio.gather(*(send(f"p{i}", keyed=i % 2 == 0) for i in range(60)))
            for i in range(0, 60, 2):
                status, body = await post(s, svc, records(f"p{i}"), **{"Idempotency-Key": f"p{i}"})
                assert status == 202 and body["accepted"] == 10  # the first answer, again
            assert seen_in_worker, "no request reached the ingest worker"
            await asyncio.sleep(1.5)  # the worker's counters reach the primary's /metrics
            async with s.get(svc.url + "/metrics") as r:
                text = await r.text()
            accepted = sum(
                float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith("collector_records_accepted_total{")
            )
            assert accepted == 600, accepted  # both processes' counts, keyed replays not again
            outcomes = sum(
                float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith("collector_records_outcomes_total{")
                and 'outcome="accepted"' in line
            )
            assert outcomes == 600, outcomes  # the workers' outcome counts reach the primary too

            # 1b. a policy changed through the API is in force in every process
            async with s.put(
                svc.url + "/v1/policy", data=b"version = 2\n[ip]\nipv4_prefix = 16\n",
                headers=svc.headers(PRIVACY_KEY, **{"Content-Type": "application/toml"}),
            ) as r:  # fmt: skip
                assert r.status == 200, await r.text()
            await asyncio.sleep(1.0)
            for i in range(20):
                status, _ = await post(s, svc, records(f"q{i}", 1, ip="198.51.100.9"))
                assert status == 202

            # 2. one tenant's rate limit is one limit (100 records/s, 2 s burst) over both
            t0 = time.monotonic()

            async def limited_post(i: int) -> tuple[int, Any]:
                async with sem:
                    return await post(s, svc, records(f"g{i}", 50), key=OTHER)

            limited = await asyncio.gather(*(limited_post(i) for i in range(30)))
            elapsed = time.monotonic() - t0
            admitted = sum(b["accepted"] for st, b in limited if st == 202)
            assert {st for st, _ in limited} <= {202, 429}
            assert admitted <= 200 + 100 * elapsed + 50, (admitted, elapsed)

            # 3. reports and subjects, whichever process takes the connection
            for _ in range(4):
                async with s.post(
                    svc.url + "/v1/subjects/export", data=b'{"user_id": "nobody"}',
                    headers=svc.headers(PRIVACY_KEY),
                ) as r:  # fmt: skip
                    assert r.status == 200, await r.text()

            # 4. the ingest worker killed -9 under load: restarted, its spool shipped
            worker = max(procs)  # the primary starts first
            sender = asyncio.gather(*(send(f"c{i}", keyed=False) for i in range(40)))
            await asyncio.sleep(1.0)
            os.kill(worker, signal.SIGKILL)
            await asyncio.wait_for(sender, 180)
            await started(svc, worker_spool, within_s=60, gone=worker)  # restarted
        t0 = time.monotonic()
        code = await svc.stop(grace_s=120)
        stop_s = time.monotonic() - t0
    assert code == 0, svc.log()[-3000:]
    assert not children(svc.pid)
    stored = await stored_per_request(svc, tmp_path)
    for tag, n in acked.items():
        if tag in first_try:  # sent once: exactly once
            assert stored[tag] == n, (tag, stored[tag], n)
        else:  # re-sent after the crash without a key: stored, maybe twice
            assert n <= stored[tag] <= 2 * n, (tag, stored[tag], n)
    assert sum(stored[f"g{i}"] for i in range(30)) == admitted
    prefixes = await sql(
        svc, tmp_path,
        "SELECT DISTINCT ip_prefix, policy_version FROM access_log WHERE service LIKE 'q%'",
    )  # fmt: skip
    assert prefixes == [{"ip_prefix": "198.51.0.0/16", "policy_version": 2}]
    assert "Traceback" not in svc.log()
    print(
        f"\n--workers 2: {len(acked)} requests acknowledged and stored, {admitted} of 1500 "
        f"rate-limited records admitted in {elapsed:.1f} s; SIGTERM: exit 0 in {stop_s:.1f} s"
    )


OTHER = "tck_redteam-ingest-globex-0123456789"
