"""The HTTP server around the app: connection limits, read deadlines and JSON for the errors
aiohttp answers before a request reaches the app.

What `web.run_app` leaves open, and what this module closes:

- Connections: every open socket is a file descriptor. Without a cap, ~20k idle connections use
  up the open-file limit, `accept()` fails with EMFILE in a loop and nothing, not even
  `/healthz`, gets in. `ConnectionServer` keeps at most `max_connections` (by default the
  open-file limit minus a reserve for the engine's files): at the cap it closes the least
  recently active idle connection, or refuses the new one with a 503 when none is idle.
- Slow clients: an idle connection is closed after `keepalive_timeout_s`, and a request head
  must arrive whole within `header_read_timeout_s` of its first byte (slowloris) and be at most
  `max_head_bytes`, besides aiohttp's own line, field and header-count limits.
- Errors answered by the HTTP layer itself (a malformed head, a duplicate Content-Length, an
  unknown `Expect`): aiohttp writes them as text/plain quoting the request and logs the raw
  header line with a traceback. `ConnectionHandler.handle_error` answers `{"error", "detail"}`
  with the right status, from fixed texts, and logs the class of the error only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import ssl
import traceback
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from aiohttp import http_exceptions, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from aiohttp.web_server import Server

from collector.config import ServerConfig
from collector.gc_tuning import tune_for_serving
from collector.log_limits import flush_suppressed
from collector.middlewares import error_response, route_of

log = logging.getLogger(__name__)
FD_RESERVE_MIN = 512  # descriptors kept for the engine's files, the log, the salts
SHED_SCAN = 256  # busy connections passed over, at most, looking for an idle one to close
# asyncio accepts up to `backlog` connections per wake-up before any can be shed: that burst
# comes out of the descriptor reserve, so it stays well below FD_RESERVE_MIN
BACKLOG = 128
_AnyHandler = Callable[[BaseRequest], Awaitable[StreamResponse]]


class AccessLogger(AbstractAccessLogger):
    """aiohttp's default access log writes the client address: ours never does. Lines of
    successful requests are never rate-limited; error lines are, per route and status."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        route = route_of(request)
        key = None if response.status < 400 else ("access", route, response.status)
        self.logger.info(
            "%s %s %d %.1fms",
            request.method,
            route,
            response.status,
            time * 1000,
            extra={"log_limit_key": key},
        )


def open_file_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def connection_cap(configured: int, nofile: int | None = None) -> int:
    """`max_connections`, or the soft open-file limit minus a reserve (a quarter, at least
    FD_RESERVE_MIN) so the engine and the log always have descriptors left."""
    if configured:
        return configured
    nofile = nofile or open_file_limit()
    return max(16, nofile - max(FD_RESERVE_MIN, nofile // 4))


class Rejected(http_exceptions.HttpProcessingError):
    """A request refused by the HTTP layer, with the answer decided when it was parsed (while
    the connection still knows how far the head had come): fixed texts only. `cause` names
    the parser's exception class, for the log."""

    def __init__(self, status: int, error: str, detail: str, cause: str) -> None:
        super().__init__(code=status, message=detail)
        self.error = error
        self.detail = detail
        self.cause = cause


HTTP_VERSIONS = frozenset({(1, 0), (1, 1)})


class ConnectionHandler(RequestHandler):
    """aiohttp's protocol with a header read deadline, a head size bound and JSON errors."""

    __slots__ = (
        "_head_bytes",
        "_head_first_newline",
        "_head_timeout",
        "_head_timer",
        "_max_head_bytes",
        "_rejected",
    )

    def __init__(
        self,
        manager: Server,
        *,
        header_read_timeout: float,
        max_head_bytes: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = header_read_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_first_newline: int | None = None
        self._max_head_bytes = max_head_bytes
        self._rejected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        manager = self._manager
        if isinstance(manager, ConnectionServer) and not manager.admit():
            # refused before aiohttp starts its request loop: a 503 and the socket closed
            with contextlib.suppress(Exception):
                cast(asyncio.Transport, transport).write(_REFUSED)
            transport.close()
            self._manager = None  # connection_lost has nothing to undo
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def is_idle(self) -> bool:
        """No request being handled or queued: idle keep-alive, or a head still arriving."""
        return not self._request_in_progress and not self._messages

    def awaiting_head(self) -> bool:
        """Waiting for (the rest of) a request head, not processing a request."""
        return self._waiter is not None and not self._waiter.done() and not self._messages

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        if data and self.awaiting_head():  # (aiohttp feeds b"" when it resumes reading)
            self._arm_head_timer()
            if self._head_first_newline is None:
                at = data.find(b"\n")
                if at >= 0:
                    self._head_first_newline = self._head_bytes + at
            self._head_bytes += len(data)
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:
            self._check_new(queued)
            self._head_done()
        elif self._head_bytes > self._max_head_bytes:
            self._reject(queued, self._head_too_large("incomplete head"))
        if self._manager is not None:
            self._manager.touch(self)  # type: ignore[attr-defined]

    def _check_new(self, first: int) -> None:
        """Decide the answer to each parser error now, and refuse heads aiohttp accepts but we
        do not serve: an HTTP version other than 1.0/1.1, a head over max_head_bytes."""
        for i in range(first, len(self._messages)):
            msg, _ = self._messages[i]
            if isinstance(msg, _ErrInfo):
                if i == 0 and self._body_failed(msg.exc):
                    return
                self._reject(i, self.classify(msg.status, msg.exc))
                return
            if msg.version not in HTTP_VERSIONS:
                self._reject(
                    i,
                    Rejected(505, "http version not supported", "HTTP/1.0 and 1.1 only", "version"),
                )
                return
            size = len(msg.method) + len(msg.path) + 12
            size += sum(len(k) + len(v) + 4 for k, v in msg.raw_headers)
            if size > self._max_head_bytes:
                self._reject(i, self._head_too_large("head"))
                return

    def _body_failed(self, exc: BaseException) -> bool:
        """A parser error inside the body of the request being handled (a bad chunk size, say).
        aiohttp queues it as the answer to a next request and leaves the handler waiting for the
        rest of its body forever, holding its in-flight slot: the handler's body read fails
        instead (400 from the handler), and the connection closes after that answer."""
        request = self._current_request
        if request is None or request.content.is_eof():
            return False
        self._messages.clear()
        self._rejected = True
        self.close()
        log.info("rejected a request body: malformed framing (%s)", type(exc).__name__)
        request.content.set_exception(RequestPayloadError("malformed body framing"))
        request.content.feed_eof()  # nothing more to read: aiohttp does not linger on it
        return True

    @staticmethod
    def _head_too_large(cause: str) -> Rejected:
        return Rejected(
            431, "request header fields too large", "request head over max_head_bytes", cause
        )

    def _reject(self, at: int, rejected: Rejected) -> None:
        """Answer the message at `at` with an error (as aiohttp does for a parser error), drop
        what was pipelined behind it and read no further."""
        self._rejected = True
        self._head_done()
        while len(self._messages) > at:
            self._messages.pop()
        self._messages.append(
            (_ErrInfo(status=rejected.code, exc=rejected, message=""), EMPTY_PAYLOAD)
        )
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _head_done(self) -> None:
        self._cancel_head_timer()
        self._head_bytes = 0
        self._head_first_newline = None

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self._loop.call_later(self._head_timeout, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    async def finish_response(
        self, request: BaseRequest, resp: StreamResponse, start_time: float | None
    ) -> tuple[StreamResponse, bool]:
        """A body that could not be read (corrupt gzip/zstd/br, broken framing) leaves the
        connection unusable: the answer says `Connection: close`, so a client does not send its
        next request into a socket that is about to be closed (it got a reset)."""
        if request.content.exception() is not None:
            resp.force_close()
        return await super().finish_response(request, resp, start_time)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp reads (lingers on) the rest of a body after an early answer; a corrupt one
        fails there and was logged as an ERROR with a 30-line traceback per request. It is
        the sender's fault and already answered: one INFO line, like the other rejections."""
        exc = kw.get("exc_info")
        if isinstance(exc, RequestPayloadError):
            log.info("closed a connection: the rest of a request body could not be read")
            return
        super().log_exception(*args, **kw)

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport is not None and self.awaiting_head():
            log.info("closed a connection: no whole request head within the header deadline")
            self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> StreamResponse:
        rejected = exc if isinstance(exc, Rejected) else self.classify(status, exc)
        if rejected.code >= 500 and not isinstance(exc, Rejected):
            tb = "".join(traceback.format_tb(exc.__traceback__)) if exc is not None else ""
            log.error("HTTP layer error %d (%s)\n%s", rejected.code, rejected.cause, tb)
        else:
            log.info("rejected a request before routing: %d (%s)", rejected.code, rejected.cause)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started: cannot send an error")
        response = error_response(rejected.code, rejected.error, rejected.detail)
        response.force_close()
        return response

    def classify(self, status: int, exc: BaseException | None) -> Rejected:
        """The answer to an error of the HTTP layer: fixed texts only, the exception's message
        quotes the request and is never used but to choose among them."""
        cause = type(exc).__name__ if exc is not None else "-"
        bad = "bad request"
        too_large = "request header fields too large"
        if isinstance(exc, Rejected):
            return exc
        if isinstance(exc, http_exceptions.LineTooLong):
            first = self._head_first_newline
            if first is None or first > self.max_line_size:
                return Rejected(414, "uri too long", "request line over max_line_size", cause)
            return Rejected(431, too_large, "a header field over max_field_size", cause)
        if isinstance(exc, http_exceptions.BadHttpMethod):
            return Rejected(400, bad, "invalid request method", cause)
        text = exc.message if isinstance(exc, http_exceptions.HttpProcessingError) else ""
        if isinstance(exc, http_exceptions.BadStatusLine):
            if "Invalid HTTP version" in text:  # well formed, not 1.0/1.1 (else "minor"...)
                return Rejected(505, "http version not supported", "HTTP/1.0 and 1.1 only", cause)
            return Rejected(400, bad, "malformed request line", cause)
        if isinstance(exc, http_exceptions.InvalidURLError):
            return Rejected(400, bad, "invalid request target", cause)
        if isinstance(exc, http_exceptions.InvalidHeader):
            return Rejected(400, bad, "invalid header field", cause)
        if isinstance(exc, http_exceptions.HttpProcessingError):
            if "too many headers" in text.lower():
                return Rejected(431, too_large, "more than max_headers header fields", cause)
            return Rejected(400, bad, _bad_message_detail(text), cause)
        if status == 504:
            return Rejected(504, "gateway timeout", "request handling timed out", cause)
        return Rejected(500, "internal error", "", cause)


def _bad_message_detail(text: str) -> str:
    """A fixed description of a malformed message, chosen by the parser's reason."""
    lowered = text.lower()
    if "duplicate" in lowered:
        return "a header that may appear once appears more than once"
    if "content-length" in lowered and "transfer-encoding" in lowered:
        return "Content-Length and Transfer-Encoding together"
    if "content-length" in lowered:
        return "invalid Content-Length"
    if "transfer-encoding" in lowered or "chunk" in lowered:
        return "invalid Transfer-Encoding or chunk"
    if "host" in lowered:
        return "missing or invalid Host header"
    if "header" in lowered:
        return "invalid header field"
    return "malformed request"


def json_http_errors(handler: _AnyHandler) -> _AnyHandler:
    """HTTP errors raised by aiohttp before the app's middlewares run (an `Expect` other than
    100-continue raises 417 with the header quoted): answered as JSON, from fixed texts."""

    async def answer(request: BaseRequest) -> StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            detail = "only Expect: 100-continue is supported" if e.status == 417 else ""
            return error_response(e.status, e.reason.lower(), detail)

    return answer


class ConnectionServer(Server):
    """aiohttp's Server with a cap on open connections, least recently active first out."""

    def __init__(
        self,
        handler: _AnyHandler,
        *,
        max_connections: int,
        header_read_timeout: float,
        max_head_bytes: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        self.header_read_timeout = header_read_timeout
        self.max_head_bytes = max_head_bytes
        self._live: OrderedDict[ConnectionHandler, None] = OrderedDict()  # least recent first
        self.shed = 0
        self.refused = 0

    def __call__(self) -> RequestHandler:
        return ConnectionHandler(
            self,
            loop=self._loop,
            header_read_timeout=self.header_read_timeout,
            max_head_bytes=self.max_head_bytes,
            **self._kwargs,
        )

    def touch(self, handler: ConnectionHandler) -> None:
        if handler in self._live:
            self._live.move_to_end(handler)

    def admit(self) -> bool:
        """Room for one more connection: at the cap, close the least recently active idle
        one; False when every connection is busy."""
        if len(self._live) < self.max_connections:
            return True
        busy: list[ConnectionHandler] = []
        victim = None
        for old in self._live:
            if old.is_idle():
                victim = old
                break
            busy.append(old)
            if len(busy) >= SHED_SCAN:
                break
        for b in busy:  # busy is active: looked at last next time, so the scan stays short
            self._live.move_to_end(b)
        if victim is not None:
            del self._live[victim]
            victim.force_close()
            self.shed += 1
            log.warning(
                "connection limit reached (max_connections = %d): closed the least "
                "recently active idle connection",
                self.max_connections,
            )
            return True
        self.refused += 1
        log.warning(
            "connection limit reached (max_connections = %d), all busy: refused a connection",
            self.max_connections,
        )
        return False

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        assert isinstance(handler, ConnectionHandler)
        self._live[handler] = None

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._live.pop(handler, None)  # type: ignore[call-overload]
        super().connection_lost(handler, exc)


def _refused_response(detail: str) -> bytes:
    body = b'{"error":"service unavailable","detail":"' + detail.encode() + b'"}'
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


_REFUSED = _refused_response("connection limit reached, every connection busy")


LINGERING_S = 2.0


class CollectorRunner(web.AppRunner):
    """An AppRunner whose server is a `ConnectionServer`."""

    def __init__(self, app: web.Application, server: ServerConfig, **kwargs: Any) -> None:
        super().__init__(
            app,
            access_log_class=AccessLogger,
            shutdown_timeout=server.shutdown_timeout_s,
            keepalive_timeout=server.keepalive_timeout_s,
            max_line_size=server.max_line_size,
            max_field_size=server.max_field_size,
            max_headers=server.max_headers,
            # after an early answer (413, 408) aiohttp reads and inflates the rest of the body so
            # that the client can read the answer: bounded to a short time, not its 10 s default
            lingering_time=LINGERING_S,
            **kwargs,
        )
        self.config = server

    async def _make_server(self) -> Server:
        stock = await super()._make_server()  # runs the app's startup and freezes it
        return ConnectionServer(
            json_http_errors(stock.request_handler),
            request_factory=stock.request_factory,
            loop=asyncio.get_running_loop(),
            max_connections=connection_cap(self.config.max_connections),
            header_read_timeout=self.config.header_read_timeout_s,
            max_head_bytes=self.config.max_head_bytes,
            **self._kwargs,
        )


class ListeningSite(web.BaseSite):
    """A TCP site like aiohttp's, with a TLS handshake deadline: a connection is counted
    against max_connections once its handshake is done, so the handshake must not last the
    60 s asyncio allows by default."""

    __slots__ = ("handshake_timeout", "host", "port", "reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=BACKLOG)
        self.host = host
        self.port = port
        self.handshake_timeout = handshake_timeout
        self.reuse_port = reuse_port  # `serve --workers N`: every worker listens on the port

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self.host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        tls = self._ssl_context
        self._server = await asyncio.get_running_loop().create_server(
            self._runner.server,  # type: ignore[arg-type]
            self.host,
            self.port,
            ssl=tls,
            backlog=self._backlog,
            ssl_handshake_timeout=self.handshake_timeout if tls else None,
            reuse_port=self.reuse_port or None,
        )


async def serve(
    app: web.Application,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    server: ServerConfig,
    *,
    reuse_port: bool = False,
    unix_path: Path | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully: stop accepting, let requests in
    flight finish (up to shutdown_timeout_s), run the app's cleanup. Under `--workers N` the
    port is shared (`reuse_port`) and the primary also listens on `unix_path`."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        runner = CollectorRunner(app, server)
        await runner.setup()  # as in web.run_app: a failed start is not cleaned up again
        tune_for_serving()  # started: what is alive now lives as long as the process
        try:
            assert isinstance(runner.server, ConnectionServer)
            cap, nofile = runner.server.max_connections, open_file_limit()
            log.info("at most %d connections (open-file limit %d)", cap, nofile)
            if cap > nofile - FD_RESERVE_MIN:
                log.warning(
                    "server.max_connections = %d leaves fewer than %d of the %d descriptors "
                    "this process may open for files: accept() and the engine may fail with "
                    "EMFILE",
                    cap,
                    FD_RESERVE_MIN,
                    nofile,
                )
            site = ListeningSite(
                runner, host, port, ssl_context, server.header_read_timeout_s, reuse_port
            )
            await site.start()
            if unix_path is not None:  # after the TCP site: the supervisor waits for this file
                os.makedirs(unix_path.parent, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(unix_path)
                await web.UnixSite(runner, str(unix_path)).start()
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        flush_suppressed()
