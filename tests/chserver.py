"""A test-only ClickHouse server: the part of the ClickHouse HTTP interface that clickhouse-connect
uses, every statement run on one chDB session, with fault switches.

No usable ClickHouse server binary can be installed here (DESIGN §9), so the server sink is tested
against this. It runs as a SUBPROCESS (`python -m tests.chserver --port P --admin-port A --data
DIR`): chDB holds one data path per process and the suite already holds one. Two ports:

- the ClickHouse port: `GET /ping`, `GET|POST /` with the SQL in the body, or in `?query=` with
  the insert data in the body (`Content-Encoding: lz4` decoded here; gzip, deflate, br and zstd
  by aiohttp); `database`, `param_<name>` and every ClickHouse setting as URL parameters; errors
  as ClickHouse answers them (`X-ClickHouse-Exception-Code` header, `Code: N. DB::Exception: ...`
  body); Basic or `X-ClickHouse-User` / `X-ClickHouse-Key` credentials when users are set.
- the admin port (never faulted): `POST /fault` `{"mode": ..., "times": N, "code": C}` with mode
  `none`, `refuse` (the ClickHouse port closed: connection refused), `error` (500 with ClickHouse
  error text, code `C`), `gateway` (502 from a proxy, no ClickHouse code), `hang` (no answer
  until the mode changes), `drop_after_insert` (an insert is applied, then the connection is
  closed without an answer); `times` > 0 clears the fault after that many requests. `POST /users` `{"name": "password"}` requires credentials.
  `GET /stats`: requests, inserts, statements seen. `POST /query` `{"sql": ..., "format": ...}`
  runs SQL on the session directly (bypassing faults), for assertions.

Statements run one at a time on one worker thread (one session, like a server's single writer in
these tests); chDB releases the GIL while it works, so the admin port answers meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent

# URL parameters that are part of the HTTP interface, not settings
TRANSPORT_PARAMS = frozenset(
    {"query", "query_id", "database", "session_id", "session_timeout", "session_check",
     "wait_end_of_query", "client_protocol_version", "default_format", "compress",
     "decompress", "enable_http_compression", "user", "password", "quota_key", "buffer_size",
     "role", "send_progress_in_http_headers", "http_headers_progress_interval_ms"}
)  # fmt: skip
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(?P<head>.*?)\s+FORMAT\s+(?P<fmt>\w+)\s?", re.S | re.I)
_INSERT_BYTES = re.compile(_INSERT.pattern.encode(), re.S | re.I)
_CODE = re.compile(r"Code: (\d+)\.")
FAULT_MODES = frozenset({"none", "refuse", "error", "gateway", "hang", "drop_after_insert"})


@dataclass
class Fault:
    mode: str = "none"
    times: int = 0  # requests it applies to; 0: until changed
    code: int = 241  # MEMORY_LIMIT_EXCEEDED: a server-side failure a client cannot fix
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def use(self) -> str:
        """The mode for this request; counts it down."""
        mode = self.mode
        if mode != "none" and self.times > 0:
            self.times -= 1
            if self.times == 0:
                self.mode = "none"
        return mode


class ClickHouseError(Exception):
    def __init__(self, code: int, text: str, status: int = 500) -> None:
        super().__init__(text)
        self.code = code
        self.status = status


def decompress_lz4(body: bytes) -> bytes:
    """clickhouse-connect sends one LZ4 frame per block, concatenated."""
    import lz4.frame

    out = io.BytesIO()
    with lz4.frame.open(io.BytesIO(body), "rb") as f:
        while chunk := f.read(1 << 20):
            out.write(chunk)
    return out.getvalue()


def _escape(value: str) -> str:
    """A query parameter value in ClickHouse's escaped text format."""
    for raw, esc in (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r")):
        value = value.replace(raw, esc)
    return value


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """One chDB session; every call on the one worker thread."""

    def __init__(self, path: Path) -> None:
        from chdb import session as chdb_session

        self.session = chdb_session.Session(str(path))

    def run(
        self,
        sql: str,
        data: bytes | None,
        database: str,
        params: dict[str, str],
        settings: dict[str, str],
        fmt: str,
    ) -> tuple[bytes, int]:
        """(output, rows written); raises ClickHouseError with the engine's code and text."""
        try:
            if database:
                self.session.query(f"USE `{database}`")
            for name, value in settings.items():
                self.session.query(f"SET {name} = {_literal(value)}")
            try:
                m = _INSERT.match(sql)
                if m:
                    inline = sql[m.end() :].encode()
                    payload = inline + (data or b"")
                    inserter = self.session.send_insert(f"INSERT INTO {m['head']}", m["fmt"])
                    inserter.append(payload)
                    result = inserter.finish()
                    return b"", int(result.rows_written)
                res = self.session.query(sql, fmt, params=params or None)
                return bytes(res.bytes()), 0
            finally:
                for name in settings:
                    with contextlib.suppress(RuntimeError):
                        self.session.query(f"SET {name} = DEFAULT")
        except RuntimeError as e:
            text = str(e)
            m = _CODE.search(text)
            code = int(m[1]) if m else 1002
            if not text.startswith("Code:"):
                text = f"Code: {code}. DB::Exception: {text}"
            raise ClickHouseError(code, text) from None

    def close(self) -> None:
        self.session.close()


@dataclass
class Stats:
    requests: int = 0
    inserts: int = 0
    statements: list[str] = field(default_factory=list)


class TestServer:
    def __init__(
        self, engine: Engine, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self.tls = tls
        self.fault = Fault()
        self.stats = Stats()
        self.users: dict[str, str] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chdb")
        self.runner: web.AppRunner | None = None

    async def _on_engine(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- the ClickHouse port ------------------------------------------------------------------
    def clickhouse_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_get("/ping", self.ping)
        app.router.add_route("*", "/", self.handle)
        return app

    async def up(self) -> None:
        if self.runner is not None:
            return
        runner = web.AppRunner(self.clickhouse_app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.tls, reuse_address=True)
        await site.start()
        self.runner = runner

    async def down(self) -> None:
        """Closes the listening socket and every open connection: new ones are refused."""
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()

    async def ping(self, request: web.Request) -> web.StreamResponse:
        mode = self.fault.use()
        if mode == "error":
            return self._error(ClickHouseError(self.fault.code, self._fault_text()))
        if mode == "hang":
            await self._hang()
        return web.Response(text="Ok.\n")

    def _fault_text(self) -> str:
        return f"Code: {self.fault.code}. DB::Exception: fault injected by the test server. (FAULT)"

    async def _hang(self) -> None:
        self.fault.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.fault.changed.wait(), timeout=3600)

    def _error(self, e: ClickHouseError) -> web.Response:
        return web.Response(
            status=e.status,
            body=(str(e) + "\n").encode(),
            headers={"X-ClickHouse-Exception-Code": str(e.code)},
            content_type="text/plain",
        )

    def _check_user(self, request: web.Request) -> None:
        if not self.users:
            return
        user = request.headers.get("X-ClickHouse-User") or request.query.get("user", "")
        password = request.headers.get("X-ClickHouse-Key") or request.query.get("password", "")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        if user not in self.users or self.users[user] != password:
            raise ClickHouseError(
                516,
                f"Code: 516. DB::Exception: {user or 'default'}: Authentication failed: password "
                "is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
                status=401,
            )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        mode = self.fault.use()
        if mode == "error":
            return self._error(ClickHouseError(self.fault.code, self._fault_text()))
        if mode == "gateway":  # a proxy in front, its server away: no ClickHouse error code
            return web.Response(status=502, text="<html>502 Bad Gateway</html>\n")
        if mode == "hang":
            await self._hang()
            return web.Response(status=503, text="hung request released\n")
        try:
            self._check_user(request)
            sql, data = await self._statement(request)
            q = request.query
            params = {k[6:]: v for k, v in q.items() if k.startswith("param_")}
            settings = {
                k: v
                for k, v in q.items()
                if k not in TRANSPORT_PARAMS and not k.startswith("param_")
            }
            self.stats.statements.append(sql[:200])
            is_insert = _INSERT.match(sql) is not None
            out, written = await self._on_engine(
                self.engine.run,
                sql,
                data,
                q.get("database", ""),
                params,
                settings,
                q.get("default_format", "TabSeparated"),
            )
        except ClickHouseError as e:
            return self._error(e)
        if is_insert:
            self.stats.inserts += 1
            if mode == "drop_after_insert":
                assert request.transport is not None
                request.transport.abort()  # applied, and the client never hears
                return web.Response(status=500)
        summary = orjson.dumps({"written_rows": str(written), "written_bytes": "0"}).decode()
        return web.Response(
            body=out,
            headers={
                "X-ClickHouse-Summary": summary,
                "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Query-Id": q.get("query_id", ""),
            },
            content_type="text/plain"
            if not out or out[:1] in b"{["
            else "application/octet-stream",
        )

    async def _statement(self, request: web.Request) -> tuple[str, bytes | None]:
        """The SQL, and the insert data when the SQL came in `?query=`."""
        if request.content_type.startswith("multipart/form-data"):
            raise ClickHouseError(
                48, "Code: 48. DB::Exception: external data is not supported here"
            )
        body = await request.read()
        if request.headers.get("Content-Encoding", "").lower() == "lz4":
            body = decompress_lz4(body)
        query = request.query.get("query")
        if query is not None:
            return query, body
        m = _INSERT_BYTES.match(body)
        if m:  # `INSERT INTO t (cols) FORMAT Native\n` then binary data
            return body[: m.end()].decode(), body[m.end() :]
        return body.decode(), None

    # -- the admin port -----------------------------------------------------------------------
    def admin_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 26)
        app.router.add_post("/fault", self.set_fault)
        app.router.add_post("/users", self.set_users)
        app.router.add_get("/stats", self.get_stats)
        app.router.add_post("/query", self.admin_query)
        return app

    async def set_fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        mode = body.get("mode", "none")
        if mode not in FAULT_MODES:
            return web.json_response({"error": f"mode: one of {sorted(FAULT_MODES)}"}, status=400)
        self.fault.mode = mode
        self.fault.times = int(body.get("times", 0))
        self.fault.code = int(body.get("code", 241))
        self.fault.changed.set()
        if mode == "refuse":
            await self.down()
        else:
            await self.up()
        return web.json_response({"mode": mode})

    async def set_users(self, request: web.Request) -> web.Response:
        self.users = {str(k): str(v) for k, v in (await request.json()).items()}
        return web.json_response({"users": sorted(self.users)})

    async def get_stats(self, request: web.Request) -> web.Response:
        s = self.stats
        return web.json_response(
            {"requests": s.requests, "inserts": s.inserts, "statements": s.statements[-500:]}
        )

    async def admin_query(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            out, _ = await self._on_engine(
                self.engine.run,
                body["sql"],
                None,
                body.get("database", ""),
                body.get("params", {}),
                {},
                body.get("format", "JSONEachRow"),
            )
        except ClickHouseError as e:
            return web.json_response({"code": e.code, "error": str(e)}, status=500)
        return web.Response(body=out, content_type="application/octet-stream")


async def _main(args: argparse.Namespace) -> None:
    engine = Engine(Path(args.data))
    tls = None
    if args.tls_cert:  # a PEM with the key and the certificate chain: the ClickHouse port is HTTPS
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert)
    server = TestServer(engine, "127.0.0.1", args.port, tls)
    admin = web.AppRunner(server.admin_app(), access_log=None)
    await admin.setup()
    await web.TCPSite(admin, "127.0.0.1", args.admin_port, reuse_address=True).start()
    if not args.down:
        await server.up()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.fault.changed.set()
    await server.down()
    await admin.cleanup()
    await loop.run_in_executor(server.executor, engine.close)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--down", action="store_true", help="start with the ClickHouse port closed")
    p.add_argument("--tls-cert", help="PEM key + certificate chain: serve HTTPS")
    asyncio.run(_main(p.parse_args()))


# -- the controlling side (the test process) --------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ChServer:
    """A running test server, seen from the tests."""

    port: int
    admin_port: int
    data: Path
    proc: subprocess.Popen[bytes]
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _admin(self, path: str, body: Any = None) -> bytes:
        data = None if body is None else orjson.dumps(body)
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}{path}",
            data=data,
            method="GET" if data is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            return bytes(r.read())

    def fault(self, mode: str, *, times: int = 0, code: int = 241) -> None:
        self._admin("/fault", {"mode": mode, "times": times, "code": code})

    def set_users(self, users: dict[str, str]) -> None:
        self._admin("/users", users)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = orjson.loads(self._admin("/stats"))
        return out

    def query(
        self, sql: str, database: str = "", params: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Rows as dicts, run on the server's session directly (faults do not apply); `params`
        plain strings (escaped here as the HTTP interface expects them)."""
        escaped = {k: _escape(v) for k, v in (params or {}).items()}
        try:
            out = self._admin("/query", {"sql": sql, "database": database, "params": escaped})
        except urllib.error.HTTPError as e:
            raise AssertionError(e.read().decode()) from None
        return [orjson.loads(line) for line in out.splitlines() if line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def running_chserver(
    data: Path,
    *,
    down: bool = False,
    port: int = 0,
    tls_cert: Path | None = None,
    wrapper: tuple[str, ...] = (),
) -> Iterator[ChServer]:
    """Start the test server in a subprocess on 127.0.0.1 and wait until it answers; with
    `tls_cert` (a PEM of key and chain) its ClickHouse port speaks HTTPS; `wrapper` prefixes
    the command (the benchmark pins it with `taskset`)."""
    port = port or free_port()
    admin_port = free_port()
    cmd = [*wrapper, sys.executable, "-m", "tests.chserver", "--port", str(port), "--admin-port",
           str(admin_port), "--data", str(data)] + (["--down"] if down else [])  # fmt: skip
    if tls_cert is not None:
        cmd += ["--tls-cert", str(tls_cert)]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=None,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    server = ChServer(port, admin_port, data, proc, tls=tls_cert is not None)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        line = proc.stdout.readline()
        if line.strip() != b"ready" or time.monotonic() > deadline:
            raise AssertionError(f"test server did not start: {line!r}")
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    main()
