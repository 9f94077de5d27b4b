"""`collector import` against the real service: plain, .gz and .zst files, rejects listed by
line number and reason (never the line), resumable after Ctrl-C without storing a chunk twice."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import zstandard

from tests.conftest import corpus_lines
from tests.redteam.service import INGEST_KEY, OTHER_KEY, REPO, Service, running_service

pytestmark = pytest.mark.slow
BAD_IP = "203.0.113.250"
BAD = [f'{BAD_IP} - - [garbage] "GET /secret HTTP/1.1" 200 1', "not a log line at all"]


def importer(svc: Service, *args: str, key: str = INGEST_KEY) -> list[str]:
    return [sys.executable, "-m", "collector", "import", *args, "--tenant", "acme",
            "--config", str(svc.config), "--no-progress"]  # fmt: skip


def env(key: str = INGEST_KEY) -> dict[str, str]:
    return {**os.environ, "COLLECTOR_API_KEY": key, "PYTHONPATH": str(REPO)}


def checkpoints(folder: Path) -> list[Path]:
    return list(folder.glob(".collector-import-*.json"))


async def accepted(svc: Service) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.get(svc.url + "/v1/outcomes", headers=svc.headers(INGEST_KEY)) as r,
    ):
        body: Any = await r.json()
    return sum(row["count"] for row in body["rows"] if row["outcome"] == "accepted")


async def run(cmd: list[str], cwd: Path, key: str = INGEST_KEY) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, cmd, cwd=cwd, env=env(key), capture_output=True, text=True, timeout=600
    )


async def test_plain_gz_and_zst_with_rejects_listed_by_line(tmp_path: Path) -> None:
    lines = corpus_lines()[:3000]
    text = "\n".join([*lines[:1000], BAD[0], "", BAD[1], *lines[1000:]]) + "\n"
    (tmp_path / "a.log").write_text(text)
    (tmp_path / "b.log.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "c.log.zst").write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    async with running_service(tmp_path) as svc:
        done = await run(importer(svc, "a.log", "b.log.gz", "c.log.zst"), tmp_path)
        assert done.returncode == 1, done.stderr  # something was rejected
        rejects = done.stdout.splitlines()
        for name in ("a.log", "b.log.gz", "c.log.zst"):  # line 1002 is blank: not a record
            assert f"{name}:1001\tline\t" in done.stdout or f"{name}:1001\ttime\t" in done.stdout
            assert any(r.startswith(f"{name}:1003\t") for r in rejects)
        assert len(rejects) == 6
        assert BAD_IP not in done.stdout + done.stderr and "secret" not in done.stdout
        assert "9,006 lines" in done.stderr and "9,000 accepted, 6 rejected" in done.stderr
        assert await accepted(svc) == 9000
        assert not checkpoints(tmp_path)  # complete: no checkpoint left


async def test_resumes_after_ctrl_c_and_never_stores_a_chunk_twice(tmp_path: Path) -> None:
    lines = corpus_lines()
    (tmp_path / "big.log").write_text("\n".join(lines * 3) + "\n")
    async with running_service(tmp_path) as svc:
        cmd = importer(svc, "big.log", "--chunk-lines", "1000")
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=tmp_path, env=env(), stdout=PIPE, stderr=PIPE
        )
        deadline = time.monotonic() + 120
        while not checkpoints(tmp_path):
            assert proc.returncode is None and time.monotonic() < deadline, "no checkpoint"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
        err = stderr.decode()
        assert proc.returncode == 130, err
        assert "run the same command to resume" in err
        (checkpoint,) = checkpoints(tmp_path)
        state = orjson.loads(checkpoint.read_bytes())
        (progress,) = state["files"].values()
        assert 0 < progress["line"] < 30_000 and progress["done"] is False
        # as if the last acknowledged chunks had never been recorded: they are sent again with
        # the same Idempotency-Keys and answered from the first answers, not stored again
        progress.update(offset=0, line=0)
        state["totals"] = {}
        checkpoint.write_text(json.dumps(state))
        done = await run(cmd, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "30,000 lines" in done.stderr and "0 rejected" in done.stderr
        assert await accepted(svc) == 30_000


async def test_a_key_of_another_tenant_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("\n".join(corpus_lines()[:10]) + "\n")
    async with running_service(tmp_path) as svc:
        done = await run(importer(svc, "a.log"), tmp_path, key=OTHER_KEY)
        assert done.returncode == 2 and "another tenant" in done.stderr
        assert OTHER_KEY not in done.stderr
        assert await accepted(svc) == 0
