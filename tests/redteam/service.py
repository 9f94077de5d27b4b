"""The real service in a subprocess, for the red-team suite: what an attacker or a careless
sender reaches is the process, its sockets and its log, not the app object.

`running_service(tmp_path)` writes a config with known API keys, starts `collector serve`,
waits for `/healthz` and yields a `Service`; on the way out it sends SIGTERM (or kills) and
keeps the whole log for the caller to scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from collector.auth import hash_key

REPO = Path(__file__).resolve().parents[2]
INGEST_KEY = "tck_redteam-ingest-acme-0123456789"
PRIVACY_KEY = "tck_redteam-privacy-acme-0123456789"
ANALYST_KEY = "tck_redteam-analyst-acme-0123456789"
ADMIN_KEY = "tck_redteam-admin-acme-0123456789"
OTHER_KEY = "tck_redteam-ingest-globex-0123456789"
ALL_KEYS = (INGEST_KEY, PRIVACY_KEY, ANALYST_KEY, ADMIN_KEY, OTHER_KEY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(
    port: int, data: Path, extra: str = "", server_extra: str = "", storage_extra: str = ""
) -> str:
    """A complete config; `server_extra` / `storage_extra` lines go into [server] / [storage],
    `extra` is appended."""
    return f"""
[server]
host = "127.0.0.1"
port = {port}
{server_extra}

[storage]
path = "{data}"
{storage_extra}

[batch]
max_rows = 5000
max_delay_ms = 50

[policy]
file = "{REPO / "policy.toml"}"

[[tenants]]
id = "acme"
plan = "standard"
api_key_sha256 = ["{hash_key(INGEST_KEY)}"]
[[tenants.keys]]
sha256 = "{hash_key(PRIVACY_KEY)}"
scopes = ["privacy"]
[[tenants.keys]]
sha256 = "{hash_key(ANALYST_KEY)}"
scopes = ["analyst"]
[[tenants.keys]]
sha256 = "{hash_key(ADMIN_KEY)}"
scopes = ["admin"]

[[tenants]]
id = "globex"
plan = "free"
api_key_sha256 = ["{hash_key(OTHER_KEY)}"]
{extra}
"""


@dataclass
class Service:
    url: str
    port: int
    proc: asyncio.subprocess.Process
    config: Path
    log_path: Path
    data: Path
    _log: list[bytes] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        """Everything the service wrote so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def rss_bytes(self) -> int:
        """Resident memory of the service process now, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def peak_rss_bytes(self) -> int:
        """High-water mark of resident memory since start (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def headers(self, key: str = INGEST_KEY, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", **extra}

    async def stop(self, grace_s: float = 60) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace_s)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode if self.proc.returncode is not None else -1


async def wait_healthy(url: str, proc: asyncio.subprocess.Process, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise AssertionError(f"collector exited early with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with s.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("collector did not become healthy")


@contextlib.asynccontextmanager
async def running_service(
    tmp_path: Path,
    *,
    extra: str = "",
    server_extra: str = "",
    storage_extra: str = "",
    data: Path | None = None,
    env: dict[str, str] | None = None,
    wrapper: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
) -> AsyncIterator[Service]:
    """Start `collector serve` on a free port; `wrapper` prefixes the command (e.g. `prlimit`),
    `args` are added to it (e.g. `--workers 2`). One process unless `args` names `--workers`:
    the checks that read the process's RSS, its connections or its log watch that one process
    (the service's own default is one worker per core)."""
    if "--workers" not in args:
        args = (*args, "--workers", "1")
    port = free_port()
    data = data or tmp_path / "data"
    config = tmp_path / "collector.toml"
    config.write_text(config_text(port, data, extra, server_extra, storage_extra))
    log_path = tmp_path / "service.log"
    out = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(
        *wrapper, sys.executable, "-m", "collector", "serve", "--config", str(config), *args,
        cwd=tmp_path, stdout=out, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    service = Service(f"http://127.0.0.1:{port}", port, proc, config, log_path, data)
    try:
        await wait_healthy(service.url, proc)
        yield service
    finally:
        await service.stop()
        out.close()
