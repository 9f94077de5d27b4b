"""Crashes against the real service and its spool: kill -9 at random moments while a client
posts the corpus with retries and Idempotency-Keys; SIGTERM under load; a torn last spool record.
Every acknowledged record is stored exactly once (counted per request: each request tags its
records with its own `service`)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from collector.combined import parse_combined
from collector.spool import encode_record
from tests.conftest import corpus_lines
from tests.redteam.service import Service, running_service
from tests.redteam.test_disk_full import fill, small_disk

__all__ = ["small_disk"]  # the tmpfs fixture

pytestmark = pytest.mark.slow
JSON = "application/json"
PER_REQUEST = 200
KILLS = 3
PASSES = 3  # the corpus sent this many times (as distinct requests)
SENDERS = 4
SHUTDOWN_TIMEOUT_S = 10
DRAIN_TIMEOUT_S = 10
SPOOL = f"[spool]\ndrain_timeout_s = {DRAIN_TIMEOUT_S}\nsegment_age_ms = 200\n"


def corpus_requests(limit: int | None = None) -> list[list[dict[str, Any]]]:
    """The access-log corpus (dates moved to now) as JSON records, in requests of PER_REQUEST;
    the records of request i carry service `req-i`."""
    records = []
    for line in corpus_lines():
        with contextlib.suppress(Exception):
            records.append(parse_combined(line))
    chunks = [records[i : i + PER_REQUEST] for i in range(0, len(records), PER_REQUEST)]
    out = [[{**r, "service": f"req-{i}"} for r in chunk] for i, chunk in enumerate(chunks)]
    return out[:limit]


async def stored_per_request(svc: Service, tmp_path: Path) -> Counter[str]:
    """Rows per request tag, read with `collector sql` once the service has stopped."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "sql", "--config", str(svc.config),
        "SELECT service, count() AS n FROM access_log GROUP BY service",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()
    return Counter({d["service"]: int(d["n"]) for d in map(orjson.loads, out.splitlines())})


async def metric_sum(s: aiohttp.ClientSession, svc: Service, name: str) -> float:
    async with s.get(svc.url + "/metrics") as r:
        text = await r.text()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


class Sender:
    """Posts every request until it is acknowledged, retrying (same Idempotency-Key) through
    refusals and crashes; `url` follows the service across restarts."""

    def __init__(self, requests: list[list[dict[str, Any]]], headers: dict[str, str]) -> None:
        self.requests = requests
        self.headers = headers
        self.url = ""
        self.acked: dict[int, int] = {}  # request -> records accepted
        self.attempts = 0
        self._next = 0

    async def run(self, s: aiohttp.ClientSession) -> None:
        while self._next < len(self.requests):
            i = self._next
            self._next += 1
            body = orjson.dumps(self.requests[i])
            headers = {**self.headers, "Idempotency-Key": f"crash-{i}", "Content-Type": JSON}
            while True:
                self.attempts += 1
                try:
                    async with s.post(self.url + "/v1/logs", data=body, headers=headers) as r:
                        if r.status == 202:
                            self.acked[i] = (await r.json())["accepted"]
                            break
                        assert r.status == 503, (r.status, await r.text())
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(0.1)


async def test_kill_9_at_random_moments_stores_every_acknowledged_record_once(
    tmp_path: Path,
) -> None:
    requests = corpus_requests() * PASSES  # request i of pass p: the same records, tag req-i
    requests = [[{**r, "service": f"req-{i}"} for r in req] for i, req in enumerate(requests)]
    data = tmp_path / "data"
    rng = random.Random()
    # kill points: after a random number of acknowledgements, then a random few ms more, so
    # every kill lands while requests are in flight (in the pipeline, the spool, the fsync...)
    thresholds = sorted(rng.sample(range(5, len(requests) - 5), KILLS))
    sender: Sender | None = None
    tasks: list[asyncio.Task[None]] = []
    kills = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        for round_ in range(KILLS + 1):
            async with running_service(tmp_path, data=data, extra=SPOOL) as svc:
                if sender is None:
                    sender = Sender(requests, svc.headers())
                sender.url = svc.url
                if not tasks:
                    tasks = [asyncio.create_task(sender.run(s)) for _ in range(SENDERS)]
                if round_ < KILLS:
                    while len(sender.acked) < thresholds[round_]:  # noqa: ASYNC110
                        await asyncio.sleep(0.005)
                    await asyncio.sleep(rng.uniform(0, 0.05))
                    kills.append(len(sender.acked))
                    svc.proc.kill()  # kill -9, whatever it is doing
                    await svc.proc.wait()
                    continue
                await asyncio.wait_for(asyncio.gather(*tasks), 300)
                t0 = time.monotonic()
                while await metric_sum(s, svc, "collector_spool_bytes") > 0:
                    assert time.monotonic() - t0 < 120, "the spool did not drain"
                    await asyncio.sleep(0.2)
                drain_s = time.monotonic() - t0
                code = await svc.stop()
                assert code == 0, svc.log()[-3000:]
    assert sender is not None
    stored = await stored_per_request(svc, tmp_path)
    assert len(sender.acked) == len(requests)
    expected = Counter({f"req-{i}": n for i, n in sender.acked.items() if n})
    assert stored == expected  # every acknowledged record exactly once, nothing else
    assert "Traceback" not in svc.log()
    print(
        f"\nkill -9 x{KILLS} (after {kills} acks): {sum(expected.values())} records in "
        f"{len(requests)} requests ({sender.attempts} attempts) stored exactly once; final "
        f"drain {drain_s:.1f} s"
    )


async def test_sigterm_under_load_exits_0_within_the_grace_and_loses_nothing(
    tmp_path: Path,
) -> None:
    requests = corpus_requests()
    server_extra = f"shutdown_timeout_s = {SHUTDOWN_TIMEOUT_S}"
    acked: dict[int, int] = {}
    refused: list[int] = []
    async with (
        running_service(tmp_path, extra=SPOOL, server_extra=server_extra) as svc,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s,
    ):
        queue = list(range(len(requests)))
        stop_sending = asyncio.Event()

        async def send() -> None:
            while queue and not stop_sending.is_set():
                i = queue.pop(0)
                try:
                    async with s.post(
                        svc.url + "/v1/logs", data=orjson.dumps(requests[i]),
                        headers=svc.headers(**{"Content-Type": JSON}),
                    ) as r:  # fmt: skip
                        if r.status == 202:
                            acked[i] = (await r.json())["accepted"]
                        else:
                            refused.append(r.status)
                except (aiohttp.ClientError, OSError):
                    stop_sending.set()  # the server stopped accepting

        senders = [asyncio.create_task(send()) for _ in range(SENDERS)]
        while len(acked) < 10:  # noqa: ASYNC110 - polls the senders' progress
            await asyncio.sleep(0.05)
        commits = await metric_sum(s, svc, "collector_spool_commits_total")
        requests_committed = await metric_sum(s, svc, "collector_spool_committed_requests_total")
        largest = await metric_sum(s, svc, "collector_spool_largest_commit_requests")
        t0 = time.monotonic()
        code = await svc.stop(grace_s=120)
        stop_s = time.monotonic() - t0
        await asyncio.wait_for(asyncio.gather(*senders), 60)
    assert code == 0, svc.log()[-3000:]
    assert stop_s < SHUTDOWN_TIMEOUT_S + DRAIN_TIMEOUT_S + 10, stop_s
    assert set(refused) <= {503}
    stored = await stored_per_request(svc, tmp_path)
    for i, n in acked.items():
        assert stored[f"req-{i}"] == n, i
    assert "Traceback" not in svc.log()
    print(
        f"\nSIGTERM under load: exit {code} in {stop_s:.1f} s, {len(acked)} requests acknowledged "
        f"({sum(acked.values())} records), all stored; group commit so far: {requests_committed:.0f} "
        f"requests in {commits:.0f} fsyncs (largest {largest:.0f})"
    )


def tear(segment: Path, partial: bytes) -> None:
    with open(segment, "ab") as f:
        f.write(partial)


async def test_a_torn_last_spool_record_is_cut_and_the_rest_shipped(tmp_path: Path) -> None:
    requests = corpus_requests(limit=5)
    data = tmp_path / "data"
    held = "[spool]\nsegment_age_ms = 3600000\n"  # nothing is shipped before the crash
    async with (
        running_service(tmp_path, data=data, extra=held) as svc,
        aiohttp.ClientSession() as s,
    ):
        acked = {}
        for i, records in enumerate(requests):
            async with s.post(
                svc.url + "/v1/logs", data=orjson.dumps(records),
                headers=svc.headers(**{"Content-Type": JSON}),
            ) as r:  # fmt: skip
                assert r.status == 202
                acked[i] = (await r.json())["accepted"]
        svc.proc.kill()
        await svc.proc.wait()
    segments = sorted((data / "spool" / "access_log").glob("*.open"))  # killed: still open
    assert segments, "the rows should be waiting in the spool"
    torn = encode_record([orjson.dumps({"service": "torn", "tenant_id": "acme"})])
    tear(segments[-1], torn[: len(torn) // 2])  # a crash while writing the next record
    async with running_service(tmp_path, data=data) as svc, aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        while await metric_sum(s, svc, "collector_spool_bytes") > 0:
            assert time.monotonic() - t0 < 60, "the spool did not drain"
            await asyncio.sleep(0.1)
        assert await svc.stop() == 0
    assert "cut a torn tail" in svc.log()
    stored = await stored_per_request(svc, tmp_path)
    assert stored == Counter({f"req-{i}": n for i, n in acked.items()})


async def test_a_full_spool_disk_is_answered_503_and_recovers(
    tmp_path: Path, small_disk: Path
) -> None:
    """The spool's own disk full (tmpfs): the commit fails, the group is answered 503 and kept
    nowhere; /readyz and /metrics say so; space back: writes work again without a restart, and
    exactly the acknowledged records are stored."""
    spool = "[spool]\nsegment_age_ms = 100\n"
    acked = 0
    async with (
        running_service(tmp_path, data=small_disk / "data", extra=spool) as svc,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s,
    ):
        body = orjson.dumps(corpus_requests(limit=1)[0][:50])
        headers = svc.headers(**{"Content-Type": JSON})
        async with s.post(svc.url + "/v1/logs", data=body, headers=headers) as r:
            assert r.status == 202
            acked += (await r.json())["accepted"]
        big = fill(small_disk)
        async with s.post(svc.url + "/v1/logs", data=body, headers=headers) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "5"
            assert await r.json() == {"error": "service unavailable", "detail": "spool is failing"}
        async with s.get(svc.url + "/readyz") as r:
            ready = await r.json()
            assert r.status == 503 and ready["status"] == "failing", ready
            assert any("spool is failing: OSError ENOSPC" in x for x in ready["reasons"]), ready
        assert await metric_sum(s, svc, "collector_spool_commit_errors_total") >= 1
        big.unlink()
        t0 = time.monotonic()
        while True:
            async with s.get(svc.url + "/readyz") as r:
                if r.status == 200:
                    break
            assert time.monotonic() - t0 < 30, "not ready after space came back"
            await asyncio.sleep(0.2)
        async with s.post(svc.url + "/v1/logs", data=body, headers=headers) as r:
            assert r.status == 202
            acked += (await r.json())["accepted"]
        while await metric_sum(s, svc, "collector_spool_bytes") > 0:
            assert time.monotonic() - t0 < 60, "the spool did not drain"
            await asyncio.sleep(0.2)
        assert await svc.stop() == 0
    assert "Traceback" not in svc.log()
    assert sum((await stored_per_request(svc, tmp_path)).values()) == acked == 100
