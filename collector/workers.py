"""`collector serve --workers N`: N processes on one port (SO_REUSEPORT), under a supervisor.

Who does what (the embedded engine can be held by one process only, DESIGN §9):
- worker 0, the **primary**: the whole service as with one process (engine, migrations, its own
  spool, the shipper, reports, subjects, policy API, salt sweep, Idempotency-Key store, rate
  limits, `/metrics`). Its shipper also ships the segments the ingest workers seal. It listens on
  the port and on a unix socket, `<storage.path>/run/primary.sock`, for the workers.
- workers 1..N-1, **ingest workers**: decode, enrich, anonymize and spool (their own spool folder,
  `<storage.path>/spool/workers/w<k>/`; sealed segments are renamed `.seg`, shipped and deleted by
  the primary) and answer 202 after their fsync. Anything whose correctness needs one place is
  forwarded to the primary over the socket: every non-ingest route, an ingest request carrying an
  `Idempotency-Key` (one key store), and the ingest requests of a tenant with a record rate
  limit (one limit, not N). `/healthz`, `/readyz` (their own spool) and `/openapi.json` are
  answered locally.
- Keys and salts are files created race-free (temp file + link) and read by every process; a
  key rotation (its generation file) is seen at the next request. Policies: SIGHUP to the
  supervisor is passed to every process (the primary writes the audit rows); a policy changed
  through `PUT /v1/policy` on the primary is passed on the same way (SIGUSR1 to the supervisor,
  which sends SIGHUP to the workers).
- The supervisor restarts a process that died (its spool is recovered by its next start) and, on
  SIGTERM or SIGINT, stops the ingest workers first (each finishes its requests and seals its
  spool), then the primary (which ships for up to `[spool] drain_timeout_s`), and exits 0 when
  all of them did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from collector import outcomes
from collector.appkeys import CONFIG, METRICS, OUTCOMES, PIPELINE, SPOOL, TENANT
from collector.config import Config
from collector.errors import ServiceUnavailable
from collector.failures import describe
from collector.roles import Role, primary_socket, workers_spool_root
from collector.salts import wall_clock_ms
from collector.spool import Spool

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
START_WITHIN_S = 120.0  # the primary must listen on its socket this soon (migrations included)
RESTART_DELAY_S = 1.0
METRICS_EVERY_S = 1.0
# headers of one hop, not passed on (the body is passed decompressed, so no Content-Encoding)
HOP_HEADERS = frozenset(
    {
        "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
        "host", "upgrade", "te", "trailer", "proxy-authorization", "proxy-authenticate",
    }
)  # fmt: skip


# ---- ingest workers


PROXY = web.AppKey("proxy", aiohttp.ClientSession)


async def forward(request: web.Request) -> web.StreamResponse:
    """The request answered by the primary, as it answered it."""
    body = await request.read()
    headers = CIMultiDict(
        (k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS
    )
    try:
        async with request.app[PROXY].request(
            request.method, "http://primary" + request.path_qs, data=body, headers=headers,
            allow_redirects=False,
        ) as r:  # fmt: skip
            data = await r.read()
            out = CIMultiDict((k, v) for k, v in r.headers.items() if k.lower() not in HOP_HEADERS)
            return web.Response(status=r.status, body=data, headers=out)
    except (aiohttp.ClientError, OSError):
        raise ServiceUnavailable("the primary process is not reachable", retry_after=5) from None


def local_or_forward(handler: Handler) -> Handler:
    """Ingest handled here unless it needs the one shared place: an Idempotency-Key, or a tenant
    with a record rate limit."""

    async def ingest(request: web.Request) -> web.StreamResponse:
        limited = {t.id for t in request.app[CONFIG].tenants if t.max_records_per_second}
        if "Idempotency-Key" in request.headers or request[TENANT].id in limited:
            return await forward(request)
        return await handler(request)

    ingest.__name__ = getattr(handler, "__name__", "ingest")
    return ingest


async def worker_readyz(request: web.Request) -> web.Response:
    """Ready: this worker's spool takes writes and is below its high-water mark."""
    spool = request.app[SPOOL]
    reasons = spool.health() + request.app[PIPELINE].salts.health(wall_clock_ms())
    body = {"queued_rows": spool.queued_rows, "spool_bytes": spool.total_bytes, "shipping": []}
    if reasons:
        status = "failing" if spool.failing is not None else "busy"
        return web.json_response({"status": status, **body, "reasons": reasons}, status=503)
    return web.json_response({"status": "ready", **body})


async def worker_storage(app: web.Application, role: Role) -> AsyncIterator[None]:
    """An ingest worker's spool (recovered, then written; the primary ships it) and its way to
    the primary."""
    config = app[CONFIG]
    from collector.kinds import KINDS

    tables = [k.table for k in KINDS.values()] + [outcomes.TABLE]
    root = workers_spool_root(config) / f"w{role.index}"
    spool = Spool(root, tables, config.spool, shipped_elsewhere=True)
    await asyncio.to_thread(spool.recover)
    spool.start()
    app[SPOOL] = spool

    async def spool_outcomes(table: str, rows: bytes, token: str) -> None:
        """This worker's outcome counts go through its spool: the primary ships them."""
        (await spool.submit({table: rows.split(b"\n")})).release()

    app[OUTCOMES] = outcomes.OutcomeRecorder(spool_outcomes)
    app[OUTCOMES].start()
    connector = aiohttp.UnixConnector(path=str(primary_socket(config)))
    app[PROXY] = aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
    )
    loop = asyncio.get_running_loop()

    def on_sighup() -> None:
        asyncio.create_task(reload_without_audit(app))  # noqa: RUF006 - short, logs its outcome

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    metrics_file = metrics_path(config, role.index)
    publisher = asyncio.create_task(publish_metrics(app, metrics_file))
    yield
    publisher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await publisher
    await app[OUTCOMES].close()
    await spool.close()
    await app[PROXY].close()
    with contextlib.suppress(OSError):
        await asyncio.to_thread(write_metrics, metrics_file, app[METRICS].snapshot())


def metrics_path(config: Config, index: int) -> Path:
    return config.storage.path / "run" / f"w{index}.metrics.json"


def write_metrics(path: Path, snapshot: dict[str, list[list[Any]]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(snapshot))
    os.replace(tmp, path)


async def publish_metrics(app: web.Application, path: Path) -> None:
    """An ingest worker's counters, for the primary's `/metrics` (at most 1 s old)."""
    while True:
        try:
            await asyncio.to_thread(write_metrics, path, app[METRICS].snapshot())
        except OSError as e:
            log.warning("worker counters not written for /metrics: %s", describe(e))
        await asyncio.sleep(METRICS_EVERY_S)


def read_worker_metrics(config: Config) -> list[dict[str, list[list[Any]]]]:
    """On the primary, at scrape time: every ingest worker's last counters (a worker restarted
    starts again from zero, which Prometheus reads as a counter reset)."""
    out = []
    for path in sorted((config.storage.path / "run").glob("w*.metrics.json")):
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            out.append(orjson.loads(path.read_bytes()))
    return out


async def reload_without_audit(app: web.Application) -> None:
    """A worker re-reads the policy files; the primary, which holds the engine, audits them."""
    from collector.policies import PolicyRefused

    store = app[PIPELINE].policies
    async with store.changing:
        try:
            store.commit(store.prepare_reload())
        except PolicyRefused as e:
            log.error("policy reload refused, the policies in force stay: %s", e)
            return
    log.info("policies reloaded")


# ---- the supervisor


class Supervisor:
    """Starts the primary, then the ingest workers; restarts what dies; stops all on SIGTERM."""

    def __init__(self, config_path: str, config: Config, args: list[str], workers: int) -> None:
        self.config_path = config_path
        self.config = config
        self.args = args  # --host/--port as given
        self.workers = workers
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self._signals: list[int] = []

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        role = "primary" if index == 0 else "ingest"
        cmd = [
            sys.executable, "-m", "collector", "serve", "--config", self.config_path,
            *self.args, "--workers", str(self.workers), "--role", role, "--index", str(index),
        ]  # fmt: skip
        return subprocess.Popen(cmd)

    def _wait_primary(self) -> bool:
        sock = primary_socket(self.config)
        deadline = time.monotonic() + START_WITHIN_S
        while time.monotonic() < deadline:
            if self.children[0].poll() is not None:
                return False
            if sock.exists():
                return True
            time.sleep(0.1)
        return False

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, lambda s, _: self._signals.append(s))
        with contextlib.suppress(FileNotFoundError):
            primary_socket(self.config).unlink()  # a stale one would look like a live primary
        self.children[0] = self._spawn(0)
        if not self._wait_primary():
            log.error("the primary process did not start")
            self._stop_all()
            return 2
        for k in range(1, self.workers):
            self.children[k] = self._spawn(k)
        while not self.stopping:
            time.sleep(0.1)
            self._handle_signals()
            for k, proc in list(self.children.items()):
                if proc.poll() is not None and not self.stopping:
                    log.error("worker %d exited with %s; restarting it", k, proc.returncode)
                    time.sleep(RESTART_DELAY_S)
                    self.children[k] = self._spawn(k)
        return self._stop_all()

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                self.stopping = True
            elif sig == signal.SIGHUP:  # the operator: every process re-reads its policies
                self._send(signal.SIGHUP, range(self.workers))
            elif sig == signal.SIGUSR1:  # the primary changed a policy: the workers re-read
                self._send(signal.SIGHUP, range(1, self.workers))

    def _send(self, sig: int, indexes: range) -> None:
        for k in indexes:
            proc = self.children.get(k)
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    def _stop_all(self) -> int:
        """Ingest workers first (their spools sealed), then the primary (which ships them)."""
        codes = []
        for group in (range(1, self.workers), range(1)):
            self._send(signal.SIGTERM, group)
            for k in group:
                proc = self.children.get(k)
                if proc is not None:
                    codes.append(proc.wait())
        # -SIGTERM: a process stopped while starting, before its handler was in place (it had
        # accepted nothing yet)
        return 0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1


async def notify_policy_change(request: web.Request, response: web.StreamResponse) -> None:
    """On the primary: a policy was changed through the API; the supervisor tells the workers."""
    if request.method == "PUT" and request.path == "/v1/policy" and response.status == 200:
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getppid(), signal.SIGUSR1)
