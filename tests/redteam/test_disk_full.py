"""Disk full under the real service: its data folder on a small tmpfs, filled up with a big file
and freed again; and its scratch folder (`data/tmp`) on a tmpfs remounted read-only. Every request is answered (503 JSON, never a hang) while the disk is full,
/readyz and /metrics say so, the service recovers without a restart when space returns, and
SIGTERM while failing stops it in a bounded time with exit 0.

Needs root to mount the tmpfs; skipped with the reason otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.redteam.service import Service, running_service

pytestmark = pytest.mark.slow
DISK_MIB = 64
ANSWER_WITHIN_S = 10.0  # a request while the disk is full is answered within this
RECOVER_WITHIN_S = 30.0  # /readyz is ready again this soon after space returns
SHUTDOWN_TIMEOUT_S = 10
# these cases check the path that inserts before the 202 (a full disk under the spool is in
# tests/redteam/test_crash.py): with the spool the 202 needs only the spool's own disk
DIRECT = "[spool]\nenabled = false\n"
MARKERS = ("198.51.100.77", "disk-full-user", "/disk-full-marker")


@contextlib.contextmanager
def tmpfs(mnt: Path, size_mib: int) -> Iterator[Path]:
    """A tmpfs of `size_mib` at `mnt`, unmounted on the way out; skips when it cannot be."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def remount(mnt: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", DISK_MIB) as mnt:
        yield mnt


@pytest.fixture
def scratch_mount(tmp_path: Path) -> Iterator[Path]:
    """`data/tmp`, where the insert files are written, on a tmpfs of its own."""
    with tmpfs(tmp_path / "data" / "tmp", 16) as mnt:
        yield mnt


def fill(disk: Path, leave_bytes: int = 0) -> Path:
    """Fill the disk with one big file, then give back `leave_bytes`."""
    big = disk / "fill"
    with open(big, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(bytes(1 << 20))
    with contextlib.suppress(OSError), open(big, "ab") as f:
        while True:
            f.write(bytes(4096))
    if leave_bytes:
        os.truncate(big, max(0, big.stat().st_size - leave_bytes))
    return big


def records(n: int) -> list[dict[str, Any]]:
    ip, user, path = MARKERS
    return [{"ip": ip, "user_id": user, "path": f"{path}/{i}"} for i in range(n)]


async def post(s: aiohttp.ClientSession, svc: Service, n: int = 10) -> tuple[int, Any, float]:
    """Status, JSON body and seconds taken; bounded: a hang fails the test."""
    t0 = time.monotonic()
    async with asyncio.timeout(ANSWER_WITHIN_S):
        async with s.post(
            svc.url + "/v1/logs", data=orjson.dumps(records(n)),
            headers=svc.headers(**{"Content-Type": "application/json"}),
        ) as r:  # fmt: skip
            body = await r.json(content_type=None)
            if r.status == 503:
                assert r.headers["Retry-After"] == "5"
            return r.status, body, time.monotonic() - t0


async def readiness(s: aiohttp.ClientSession, svc: Service) -> tuple[int, Any]:
    async with s.get(svc.url + "/readyz") as r:
        return r.status, await r.json()


async def metric(s: aiohttp.ClientSession, svc: Service, name: str) -> float:
    async with s.get(svc.url + "/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def ready_again(s: aiohttp.ClientSession, svc: Service) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < RECOVER_WITHIN_S:
        status, _ = await readiness(s, svc)
        if status == 200:
            return time.monotonic() - t0
        await asyncio.sleep(0.2)
    raise AssertionError(f"not ready {RECOVER_WITHIN_S} s after space came back")


async def test_disk_full_is_answered_shown_recovered_and_stops_cleanly(
    tmp_path: Path, small_disk: Path
) -> None:
    server_extra = f"shutdown_timeout_s = {SHUTDOWN_TIMEOUT_S}"
    async with (
        running_service(
            tmp_path, data=small_disk / "data", server_extra=server_extra, extra=DIRECT
        ) as svc,
        aiohttp.ClientSession() as s,
    ):
        status, body, _ = await post(s, svc)  # today's salt and key are made while there is room
        assert status == 202 and body["accepted"] == 10
        accepted = 10

        # 1. not a byte left: the insert file cannot be written (ENOSPC)
        big = fill(small_disk)
        status, body, first_503_s = await post(s, svc)
        assert status == 503 and body == {
            "error": "service unavailable", "detail": "storage is failing",
        }  # fmt: skip
        status, ready = await readiness(s, svc)
        assert status == 503 and ready["status"] == "failing", ready
        assert any("table access_log" in r and "ENOSPC" in r for r in ready["reasons"]), ready
        status, _, next_503_s = await post(s, svc)  # already failing: one attempt
        assert status == 503
        assert await metric(s, svc, 'collector_insert_errors_total{table="access_log"}') >= 2
        assert await metric(s, svc, 'collector_storage_failing{table="access_log"}') == 1
        async with s.get(svc.url + "/healthz") as r:
            assert r.status == 200  # alive, only not ready

        big.unlink()  # space returns: recovered without a restart
        recovered_s = await ready_again(s, svc)
        status, body, _ = await post(s, svc)
        assert status == 202, body
        accepted += 10

        # 2. a few hundred KiB left: the file is written, the engine cannot reserve its part
        big = fill(small_disk, leave_bytes=300 * 1024)
        status, body, engine_503_s = await post(s, svc)
        assert status == 503, body
        status, ready = await readiness(s, svc)
        assert status == 503 and any("NOT_ENOUGH_SPACE" in r for r in ready["reasons"]), ready
        big.unlink()
        await ready_again(s, svc)
        status, body, _ = await post(s, svc)
        assert status == 202, body
        accepted += 10

        # 3. SIGTERM while failing, with requests on their way: all answered, exit 0
        big = fill(small_disk)
        outcomes: list[object] = []

        async def keep_posting() -> None:
            while True:
                try:
                    status, _, _ = await post(s, svc, n=5)
                except aiohttp.ClientError as e:  # the server closed: stopped accepting
                    outcomes.append(type(e).__name__)
                    return
                outcomes.append(status)

        senders = [asyncio.create_task(keep_posting()) for _ in range(8)]
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        code = await svc.stop(grace_s=60)
        stop_s = time.monotonic() - t0
        await asyncio.wait_for(asyncio.gather(*senders), ANSWER_WITHIN_S)
        assert code == 0, svc.log()[-3000:]
        assert stop_s < SHUTDOWN_TIMEOUT_S + 5, stop_s
        statuses = [o for o in outcomes if isinstance(o, int)]
        assert statuses and set(statuses) == {503}, outcomes
        big.unlink()

    print(
        f"\ndisk full: first 503 in {first_503_s:.2f} s, next {next_503_s:.2f} s; engine "
        f"refusal 503 in {engine_503_s:.2f} s; ready {recovered_s:.1f} s after space came back; "
        f"SIGTERM while failing: exit {code} in {stop_s:.2f} s; "
        f"{len(statuses)} requests answered 503 around it"
    )
    log = svc.log()
    assert "storage for access_log is failing" in log and "recovered" in log
    assert "Traceback" not in log
    for marker in MARKERS:
        assert marker not in log
    counted = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "sql", "--config", str(svc.config),
        "SELECT count() AS n FROM access_log",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(counted.communicate(), 120)
    assert counted.returncode == 0, err.decode()
    assert orjson.loads(out) == {"n": accepted}  # what got 202, nothing else


async def test_a_read_only_scratch_folder_is_answered_shown_and_recovered(
    tmp_path: Path, scratch_mount: Path
) -> None:
    """Root writes through any file mode, so the folder is made read-only for real: its tmpfs
    is remounted `ro`, then `rw` again."""
    async with running_service(tmp_path, extra=DIRECT) as svc, aiohttp.ClientSession() as s:
        status, _, _ = await post(s, svc)
        assert status == 202
        remount(scratch_mount, "ro")
        try:
            status, body, first_503_s = await post(s, svc)
            assert status == 503 and body["detail"] == "storage is failing"
            status, ready = await readiness(s, svc)
            assert status == 503 and any(
                "table access_log" in r and "EROFS" in r for r in ready["reasons"]
            ), ready
            metrics_errors = 'collector_background_errors_total{task="batcher-access_log"}'
            assert await metric(s, svc, metrics_errors) == 1
        finally:
            remount(scratch_mount, "rw")
        recovered_s = await ready_again(s, svc)
        status, body, _ = await post(s, svc)
        assert status == 202, body
        remount(scratch_mount, "ro")  # and SIGTERM while it fails
        try:
            t0 = time.monotonic()
            code = await svc.stop(grace_s=60)
            stop_s = time.monotonic() - t0
        finally:
            remount(scratch_mount, "rw")
    assert code == 0 and stop_s < 30, (code, stop_s)
    print(
        f"\nread-only scratch: 503 in {first_503_s:.2f} s; ready {recovered_s:.1f} s after rw; "
        f"SIGTERM while failing: exit {code} in {stop_s:.2f} s"
    )
    assert "Traceback" not in svc.log()
