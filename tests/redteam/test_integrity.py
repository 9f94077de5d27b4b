"""Integrity against the real service: one client sending a fresh Idempotency-Key with every
request (the largest answers: 100 record errors each) cannot grow the key file or the memory
without bound, and a key is tied to its route."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.redteam.service import running_service

pytestmark = pytest.mark.slow

REQUESTS = 1000
COMPACT_MIN = 64 * 1024
MAX_KEYS = 50
JSON = "application/json"
# 100 records the validator refuses, each with its own error: the largest answer there is
BODY = orjson.dumps([{"ip": f"not-an-ip-{i}"} for i in range(100)] + [{"ip": "192.0.2.1"}])


async def test_idempotency_file_and_memory_stay_bounded(tmp_path: Path) -> None:
    extra = (
        f"\n[idempotency]\nmax_keys_per_tenant = {MAX_KEYS}\ncompact_min_bytes = {COMPACT_MIN}\n"
    )
    async with running_service(tmp_path, extra=extra) as svc, aiohttp.ClientSession() as s:
        path = svc.data / "idempotency.jsonl"
        sizes: list[int] = []

        async def client(worker: int) -> None:
            for i in range(worker, REQUESTS, 8):
                headers = svc.headers(**{"Idempotency-Key": f"retry-{i}", "Content-Type": JSON})
                async with s.post(svc.url + "/v1/logs", data=BODY, headers=headers) as r:
                    assert r.status == 202, await r.text()
                    assert (await r.json())["rejected"] == 100
                if i % 100 == 0:
                    sizes.append(path.stat().st_size)

        await asyncio.gather(*(client(w) for w in range(8)))
        async with s.get(svc.url + "/metrics") as r:
            metrics = await r.text()
        # the same key on another route: refused, not the /v1/logs answer
        async with s.post(
            svc.url + "/v1/events",
            data=b'[{"event": "e"}]',
            headers=svc.headers(
                **{"Idempotency-Key": f"retry-{REQUESTS - 1}", "Content-Type": JSON}
            ),
        ) as r:
            assert r.status == 422
            assert (await r.json())["detail"] == "Idempotency-Key was used on another route"
    written = REQUESTS * 650  # what the file would hold without compaction (~650 KB)
    largest = max(sizes)

    # the trigger, plus what 8 clients add while the thread rewrites and between two samples
    assert largest < COMPACT_MIN + 100 * 1500, (largest, written)
    assert f"collector_idempotency_evicted_keys {REQUESTS - MAX_KEYS}" in metrics
    live = int(float(next(ln for ln in metrics.splitlines() if ln.startswith("collector_idempotency_live_bytes")).split()[1]))  # fmt: skip
    assert live <= MAX_KEYS * 1500, live
