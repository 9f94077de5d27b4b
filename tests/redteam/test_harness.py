"""The harness itself: the service starts, takes a record, stops with exit 0 and a clean log."""

from pathlib import Path

import aiohttp
import pytest

from tests.redteam.service import ALL_KEYS, running_service

pytestmark = pytest.mark.slow


async def test_service_starts_ingests_and_stops_cleanly(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc, aiohttp.ClientSession() as s:
        async with s.post(
            svc.url + "/v1/logs",
            json=[{"ip": "198.51.100.7", "path": "/", "user_id": "harness-user"}],
            headers=svc.headers(),
        ) as r:
            assert r.status == 202, await r.text()
            assert (await r.json())["accepted"] == 1
        assert svc.rss_bytes() > 0
    assert svc.proc.returncode == 0
    log = svc.log()
    assert "collector stopped" in log
    for secret in (*ALL_KEYS, "198.51.100.7", "harness-user"):
        assert secret not in log
