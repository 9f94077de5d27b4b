"""What a sender's requests leave behind under `serve --workers N` (the default: one process per
core): a request that lands on an ingest worker is answered like one on the primary, and its
outcomes (accepted, rejected, refused) reach `GET /v1/outcomes` and `/metrics` through the
worker's spool and counter snapshots."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.redteam.service import running_service

pytestmark = pytest.mark.slow
N = 20
GOOD_AND_BAD = [{"ip": "203.0.113.7", "path": "/", "status": 200}, {"path": "/"}]


async def test_outcomes_of_requests_on_every_worker_are_counted(tmp_path: Any) -> None:
    async with running_service(tmp_path, args=("--workers", "2")) as svc:
        for _ in range(300):  # until the ingest worker listens too
            if "as ingest worker 1" in svc.log():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the ingest worker did not start")
        # a new connection per request: the kernel spreads them over both processes
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as s:
            for _ in range(N):
                async with s.post(
                    svc.url + "/v1/logs", json=GOOD_AND_BAD, headers=svc.headers()
                ) as r:
                    assert r.status == 202, await r.text()
                xml = svc.headers(**{"Content-Type": "application/xml"})
                async with s.post(svc.url + "/v1/logs", data=b"<a/>", headers=xml) as r:
                    assert r.status == 415
            want = {("accepted", ""): N, ("rejected", "missing_field"): N}
            want[("refused", "unsupported_media_type")] = N
            got: dict[tuple[str, str], int] = {}
            for _ in range(120):  # the worker flushes every 10 s, then its spool is shipped
                async with s.get(svc.url + "/v1/outcomes", headers=svc.headers()) as r:
                    assert r.status == 200
                    body = await r.json()
                got = {(x["outcome"], x["reason"]): x["count"] for x in body["rows"]}
                if got == want:
                    break
                await asyncio.sleep(0.5)
            assert got == want
            async with s.get(svc.url + "/metrics") as r:
                assert r.status == 200
                metrics = await r.text()
            assert (
                'collector_records_outcomes_total{kind="access_log",outcome="refused",'
                f'reason="unsupported_media_type"}} {float(N)}' in metrics
            )
    assert "Traceback" not in svc.log()
