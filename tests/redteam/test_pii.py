"""The hostile corpus through the real service in a subprocess, every endpoint; then, with the
service stopped, `collector scan-pii` finds nothing, no raw value is in any String column of
any table (read with `collector sql`), and the service log holds none of them either."""

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests import hostile
from tests.redteam.service import running_service

pytestmark = pytest.mark.slow


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args], capture_output=True, text=True, timeout=300
    )


async def test_hostile_corpus_through_the_real_service(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc, aiohttp.ClientSession() as s:
        for route, body, headers in hostile.requests():
            async with s.post(svc.url + route, data=body, headers=svc.headers(**headers)) as r:
                assert r.status in (200, 202), (route, r.status)
                text = await r.text()
                assert not hostile.leaks([text]), route  # answers never echo a value
        code = await svc.stop()
    assert code == 0
    config = str(svc.config)

    out = await asyncio.to_thread(cli, "scan-pii", "--config", config)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("no personal data found in ")

    listing = cli("sql", "--config", config, hostile.STRING_COLUMNS_SQL)
    columns = [orjson.loads(line) for line in listing.stdout.splitlines() if line]
    assert len(columns) > 40
    union = " UNION ALL ".join(
        hostile.column_sql(c["table"], c["name"], c["type"]) for c in columns
    )
    rows = cli("sql", "--config", config, union)
    assert rows.returncode == 0, rows.stderr
    stored = [str(orjson.loads(line)["v"]) for line in rows.stdout.splitlines() if line]
    assert len(stored) > 10 * hostile.values_tried()
    assert hostile.leaks(stored) == []
    # nor in the service's own log; its access lines end in a duration (`251.7ms`), which is not
    # the host-form IPv4 `251.7`
    log = re.sub(r" \d+\.\dms$", "", svc.log(), flags=re.MULTILINE)
    assert hostile.leaks([log]) == []
