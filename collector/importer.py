"""`collector import FILE... --tenant T`: backfill files (plain, .gz, .zst, or `-` for stdin)
through the running service, in chunks posted like any shipper's.

Through the service, not into the engine directly: the embedded chDB opens its data path in one
process only, so a second process could not write while the service runs; and over HTTP every
record takes exactly the path live traffic takes (the tenant's policy in force, rate limits,
the outcomes table, audit). The key comes from `COLLECTOR_API_KEY` or `--key-file`, like
`collector sql`.

Resumable: after each chunk the service has acknowledged, the byte offset and line number of
each file are written to a checkpoint file (atomically); a run with the same files, tenant and
kind starts where the last one stopped. Each chunk is posted with an `Idempotency-Key` made of
the tenant, the route, the file, the chunk's offset and its bytes, so a chunk that was in flight
when the run was interrupted, posted again, is answered from the first answer and not stored
twice (the service keeps keys 24 h). stdin cannot be resumed.

Rejected records are listed by file, line number, field and reason (the service's message,
which never quotes a value); never the line itself. Exit status: 0 all accepted, 1 something
rejected, 2 refused (bad arguments, key, format), 3 the service stayed unavailable, 130
interrupted (the checkpoint is kept).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import orjson
import zstandard
from tqdm import tqdm

from collector.errors import CollectorError

ROUTES = {"logs": "/v1/logs", "devices": "/v1/devices", "events": "/v1/events"}
ROUTES["mail-scans"] = "/v1/mail-scans"
NDJSON, TEXT = "application/x-ndjson", "text/plain"
CHUNK_LINES = 5000  # at most the service's `max_records` (10,000 by default)
CHUNK_BYTES = 8 * 1024 * 1024  # under the service's `max_body_bytes` (10 MiB by default)
RETRIES = 8
EXIT_REJECTED, EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 1, 2, 3, 130


class Refused(CollectorError):
    """The service refused a chunk for a reason retrying cannot fix (exit 2)."""


class Unavailable(CollectorError):
    """The service stayed unavailable through every retry (exit 3)."""


@dataclass
class Checkpoint:
    """Where each file stopped: {"offset": decompressed bytes, "line": lines read, "done"}."""

    path: Path | None
    chunk_lines: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None, chunk_lines: int) -> Checkpoint:
        if path is None or not path.exists():
            return cls(path, chunk_lines)
        try:
            doc = orjson.loads(path.read_bytes())
            return cls(path, int(doc["chunk_lines"]), dict(doc["files"]), dict(doc["totals"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise Refused(f"{path}: not a checkpoint of collector import ({e})") from None

    def save(self) -> None:
        if self.path is None:
            return
        doc = {"chunk_lines": self.chunk_lines, "files": self.files, "totals": self.totals}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path)


def default_checkpoint(tenant: str, kind: str, files: list[str]) -> Path | None:
    """One checkpoint per (tenant, kind, files), in the working directory; none for stdin."""
    if "-" in files:
        return None
    ident = "\0".join([tenant, kind, *(str(Path(f).resolve()) for f in files)])
    return Path(f".collector-import-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json")


class Source:
    """A file's decompressed lines with their byte offsets, and how far into the (compressed)
    file the reader is, for the progress bar."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.raw: IO[bytes] | None = None
        if name == "-":
            self.stream: IO[bytes] | gzip.GzipFile | io.BufferedReader = sys.stdin.buffer
            self.size = 0
            return
        path = Path(name)
        try:
            self.raw = open(path, "rb")  # noqa: SIM115 - closed by close()
            self.size = os.fstat(self.raw.fileno()).st_size
        except OSError as e:
            raise Refused(f"{name}: cannot open: {e.strerror}") from None
        if name.endswith(".gz"):
            self.stream = gzip.GzipFile(fileobj=self.raw)
        elif name.endswith(".zst"):
            reader = zstandard.ZstdDecompressor().stream_reader(self.raw)
            self.stream = io.BufferedReader(reader, 1 << 20)
        else:
            self.stream = self.raw

    @property
    def position(self) -> int:
        """Bytes of the file itself read so far (compressed bytes for .gz and .zst)."""
        return self.raw.tell() if self.raw is not None else 0

    def skip(self, offset: int) -> None:
        """Go to a decompressed byte offset (a checkpoint): a seek in a plain file, else read
        and drop."""
        if self.stream is self.raw and self.raw is not None:
            self.raw.seek(offset)
            return
        left = offset
        while left > 0:
            got = self.stream.read(min(left, 1 << 20))
            if not got:
                raise Refused(f"{self.name}: shorter than its checkpoint; was it replaced?")
            left -= len(got)

    def lines(self) -> Iterator[bytes]:
        try:
            yield from self.stream
        except (OSError, EOFError, zstandard.ZstdError) as e:
            raise Refused(f"{self.name}: cannot read: {e}") from None

    def close(self) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()
        if self.raw is not None:
            self.raw.close()


@dataclass
class Chunk:
    body: bytes
    line_numbers: list[int]  # of each record line in the body, in order
    end_offset: int
    end_line: int


def chunks(source: Source, offset: int, line: int, max_lines: int) -> Iterator[Chunk]:
    """Chunks of up to `max_lines` non-blank lines (and CHUNK_BYTES). Blank lines are no record
    and are not sent. A W3C `#Fields:` directive is sent again at the head of every later chunk:
    it is the state the following lines are read with."""
    fields: bytes | None = None
    parts: list[bytes] = []
    numbers: list[int] = []
    size = 0
    for raw in source.lines():
        offset += len(raw)
        line += 1
        text = raw.rstrip(b"\r\n")
        if not text.strip():
            continue
        if text.startswith(b"#Fields:"):
            fields = text
        if not parts and fields is not None and text is not fields:
            parts.append(fields)
            numbers.append(0)
            size += len(fields) + 1
        parts.append(text)
        numbers.append(line)
        size += len(text) + 1
        if len(parts) >= max_lines or size >= CHUNK_BYTES:
            yield Chunk(b"\n".join(parts) + b"\n", numbers, offset, line)
            parts, numbers, size = [], [], 0
    if parts:
        yield Chunk(b"\n".join(parts) + b"\n", numbers, offset, line)


class Client:
    """Posts chunks over one kept-alive connection; retries what a retry can fix."""

    def __init__(self, url: str, key: str, timeout_s: float = 120.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused(f"--url: must be http(s)://host:port, got scheme {parts.scheme!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.key = key
        self.timeout_s = timeout_s
        self._local = threading.local()  # a connection per thread: posts run on a pool

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = self._local.conn = cls(self.host, self.port, timeout=self.timeout_s)
        return conn

    def post(self, route: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        headers = {**headers, "Authorization": f"Bearer {self.key}"}
        delay = 0.5
        for attempt in range(RETRIES + 1):
            try:
                conn = self._connection()
                conn.request("POST", route, body=body, headers=headers)
                resp = conn.getresponse()
                status, data = resp.status, resp.read()
                retry_after = resp.getheader("Retry-After")
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt == RETRIES:
                    raise Unavailable(f"cannot reach the service: {e}") from None
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if status == 202:
                answer: dict[str, Any] = orjson.loads(data)
                return answer
            detail = _detail(data)
            if status in (429, 503) and attempt < RETRIES:
                wait = float(retry_after) if retry_after and retry_after.isdigit() else delay
                time.sleep(min(wait, 60.0))
                delay = min(delay * 2, 30.0)
                continue
            if status in (429, 503):
                raise Unavailable(f"the service answered {status}: {detail}")
            raise Refused(f"the service refused the chunk ({status}): {detail}")
        raise Unavailable("the service stayed unavailable")  # pragma: no cover

    def close(self) -> None:
        """This thread's connection (a new one is made on the next post)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _detail(data: bytes) -> str:
    try:
        doc = orjson.loads(data)
        return f"{doc.get('error', '')}: {doc.get('detail', '')}"[:300]
    except (ValueError, AttributeError):
        return f"{len(data)} bytes, not JSON"


def content_type(kind: str, fmt: str, first: bytes) -> tuple[str, dict[str, str]]:
    """(Content-Type, extra headers) for a file: NDJSON for JSON lines, text for access-log
    lines (logs only); a named text format is sent as `X-Log-Format`."""
    if fmt in ("json", "ndjson"):
        return NDJSON, {}
    if fmt == "auto":
        is_json = first.lstrip().startswith(b"{")
        if kind != "logs" or is_json:
            return NDJSON, {}
        return TEXT, {}
    if kind != "logs":
        raise Refused(f"--format {fmt}: text formats are for --kind logs only")
    return TEXT, ({} if fmt == "text" else {"X-Log-Format": fmt})


def _first_line(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.peek(4096)[:4096] if hasattr(sys.stdin.buffer, "peek") else b""
    source = Source(name)
    try:
        for line in source.lines():
            if line.strip():
                return line
        return b""
    finally:
        source.close()


@dataclass
class Totals:
    lines: int = 0
    accepted: int = 0
    rejected: int = 0

    def add(self, other: dict[str, int]) -> None:
        self.lines += other.get("lines", 0)
        self.accepted += other.get("accepted", 0)
        self.rejected += other.get("rejected", 0)

    def as_dict(self) -> dict[str, int]:
        return {"lines": self.lines, "accepted": self.accepted, "rejected": self.rejected}


def run_import(
    files: list[str],
    tenant: str,
    kind: str,
    fmt: str,
    client: Client,
    checkpoint: Checkpoint,
    *,
    out: IO[str],
    err: IO[str],
    progress: bool | None = None,
    parallel: int = 2,
) -> int:
    route = ROUTES[kind]
    totals = Totals()
    totals.add(checkpoint.totals)
    resumed = dict(checkpoint.totals)
    started = time.monotonic()
    sizes = [0 if f == "-" else _size(f) for f in files]
    bar = tqdm(
        total=sum(sizes) or None, unit="B", unit_scale=True, file=err, disable=progress is False
        if progress is not None else None, dynamic_ncols=True, desc="import",
    )  # fmt: skip
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="import")
    try:
        for name, size in zip(files, sizes, strict=True):
            ident = "-" if name == "-" else str(Path(name).resolve())
            state = checkpoint.files.setdefault(ident, {"offset": 0, "line": 0, "done": False})
            if state["done"]:
                bar.update(size)
                continue
            ctype, extra = content_type(kind, fmt, _first_line(name))
            headers = {"Content-Type": ctype, **extra}
            source = Source(name)
            try:
                if state["offset"]:
                    source.skip(state["offset"])
                    err.write(f"{name}: resuming at line {state['line'] + 1}\n")
                last = 0
                start = state["offset"]
                # `parallel` chunks in flight (the service parses one while it stores another);
                # answers are taken in order, so the checkpoint only ever moves past chunks
                # that were acknowledged, and every earlier one was too
                flight: deque[tuple[Future[dict[str, Any]], Chunk]] = deque()
                for chunk in chunks(source, start, state["line"], checkpoint.chunk_lines):
                    digest = hashlib.sha256()
                    for part in (tenant, route, ident, str(start)):
                        digest.update(part.encode() + b"\0")
                    digest.update(chunk.body)
                    key = "import-" + digest.hexdigest()[:48]
                    chunk_headers = {**headers, "Idempotency-Key": key}
                    flight.append(
                        (pool.submit(client.post, route, chunk.body, chunk_headers), chunk)
                    )
                    start = chunk.end_offset
                    while len(flight) >= parallel or (flight and flight[0][0].done()):
                        answered, sent = flight.popleft()
                        _acknowledged(name, sent, answered.result(), out, totals, state)
                        checkpoint.totals = totals.as_dict()
                        checkpoint.save()
                        position = source.position
                        bar.update(max(0, position - last))
                        last = position
                        elapsed = max(time.monotonic() - started, 1e-6)
                        rate = (totals.lines - resumed.get("lines", 0)) / elapsed
                        bar.set_postfix(
                            lines=totals.lines, lines_s=f"{rate:,.0f}", rejected=totals.rejected
                        )
                while flight:
                    answered, sent = flight.popleft()
                    _acknowledged(name, sent, answered.result(), out, totals, state)
                    checkpoint.totals = totals.as_dict()
                    checkpoint.save()
                bar.update(max(0, size - last))
                state["done"] = True
                checkpoint.save()
            finally:
                source.close()
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)  # a chunk in flight is sent again later
        bar.close()
        where = f"; run the same command to resume ({checkpoint.path})" if checkpoint.path else ""
        err.write(f"interrupted after {totals.lines:,} lines{where}\n")
        return EXIT_INTERRUPTED
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
    elapsed = max(time.monotonic() - started, 1e-6)
    rate = (totals.lines - resumed.get("lines", 0)) / elapsed
    err.write(
        f"imported {totals.lines:,} lines into {tenant} ({kind}): {totals.accepted:,} accepted, "
        f"{totals.rejected:,} rejected; {elapsed:.1f} s, {rate:,.0f} lines/s\n"
    )
    if checkpoint.path is not None:
        checkpoint.path.unlink(missing_ok=True)  # complete: a new run starts from the top
    return EXIT_REJECTED if totals.rejected else 0


def _size(name: str) -> int:
    try:
        return os.stat(name).st_size
    except OSError as e:
        raise Refused(f"{name}: cannot open: {e.strerror}") from None


def _acknowledged(
    name: str,
    chunk: Chunk,
    answer: dict[str, Any],
    out: IO[str],
    totals: Totals,
    state: dict[str, Any],
) -> None:
    """A chunk the service answered: its rejects listed, counted, the file's state moved on."""
    _list_rejects(name, chunk, answer, out)
    records = sum(1 for n in chunk.line_numbers if n)
    totals.add({"lines": records, "accepted": int(answer.get("accepted", 0))})
    totals.add({"rejected": int(answer.get("rejected", 0))})
    state.update(offset=chunk.end_offset, line=chunk.end_line)


def _list_rejects(name: str, chunk: Chunk, answer: dict[str, Any], out: IO[str]) -> None:
    """`FILE:LINE<TAB>field<TAB>reason` per rejected record the answer lists; for the ones it
    left out (it lists the first 100), the range of lines they are in."""
    numbers = chunk.line_numbers
    for e in answer.get("errors", []):
        index = int(e.get("index", -1))
        line = numbers[index] if 0 <= index < len(numbers) else 0
        out.write(f"{name}:{line}\t{e.get('field', '')}\t{e.get('error', '')}\n")
    listed = len(answer.get("errors", []))
    if answer.get("errors_truncated"):
        more = int(answer.get("rejected", 0)) - listed
        first = next((n for n in numbers if n), 0)
        out.write(f"{name}:{first}-{chunk.end_line}\t\t{more} more rejected in these lines\n")
