"""`Idempotency-Key`: a retried request (same tenant, same route, same key, within 24 h) is not
ingested again and gets the first answer again, also after a restart.

Answers are kept in memory and appended (fsync'd) to `<data>/idempotency.jsonl`. Only the SHA-256
of the key and a digest of the body are kept: a key chosen by a client may carry anything.
Answers hold counts and field names, never input values. Only successful answers are remembered:
a request that failed (503) may be retried for real.

Everything is bounded while running, not only at restart:
- a stored answer is compact: zlib-compressed, at most `MAX_STORED_ANSWER` bytes; a larger one
  (a 202 listing many record errors) is stored with fewer `errors` and `errors_truncated: true`,
  so a replay carries the same counts and the first errors that fit;
- per tenant at most `max_keys_per_tenant` keys and `max_bytes_per_tenant` bytes are held; at
  either cap the tenant's oldest key is forgotten first (counted in `evicted`). A key forgotten
  early is a retry that will be ingested again, which is why answers are compact: the caps are
  reached by request count, not by answer size;
- the file is rewritten with the live entries only (on a worker thread, appends continue) when
  it holds more than `COMPACT_FACTOR` times the live bytes (and at least `compact_min_bytes`).

The route is part of a key's identity: the same key used on another route is a 422, never the
other route's answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import time
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from collector.errors import BadRequest, UnprocessableEntity

log = logging.getLogger(__name__)
TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255
MAX_STORED_ANSWER = 1024  # compressed answer bytes kept per key
COMPACT_FACTOR = 2
COMPACT_MIN_BYTES = 1024 * 1024
DEFAULT_MAX_KEYS_PER_TENANT = 100_000
DEFAULT_MAX_BYTES_PER_TENANT = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Entry:
    at: float
    route: str
    body_digest: str
    status: int
    content_type: str
    packed: bytes  # the answer body, zlib-compressed
    size: int  # bytes of its line in the file: what the byte caps count

    def answer(self) -> Answer:
        return Answer(self.status, self.content_type, zlib.decompress(self.packed))


def key_digest(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
    return hashlib.sha256(key.encode()).hexdigest()


def body_digest(body: bytes) -> str:
    """128 bits of SHA-256: tells a retry from another body sent with the same key."""
    return hashlib.sha256(body).hexdigest()[:32]


def pack_answer(answer: Answer, limit: int = MAX_STORED_ANSWER) -> bytes:
    """The answer body compressed to at most `limit` bytes; a JSON answer that does not fit
    keeps its counts and the first `errors` that fit, marked `errors_truncated`."""
    packed = zlib.compress(answer.body, 6)
    if len(packed) <= limit:
        return packed
    doc: Any = None
    if answer.content_type == "application/json":
        with contextlib.suppress(orjson.JSONDecodeError):
            doc = orjson.loads(answer.body)
    if not isinstance(doc, dict) or not isinstance(doc.get("errors"), list):
        # an OTLP answer: one message naming the first error, so this does not happen; were it
        # to, the rows are stored already and the answer is kept as it is rather than lost
        return packed
    errors: list[Any] = doc["errors"]
    keep = len(errors)
    while keep > 0:
        keep //= 2
        trimmed = {**doc, "errors": errors[:keep], "errors_truncated": True}
        packed = zlib.compress(orjson.dumps(trimmed), 6)
        if len(packed) <= limit:
            return packed
    return packed


class IdempotencyStore:
    def __init__(
        self,
        path: Path,
        max_keys_per_tenant: int = DEFAULT_MAX_KEYS_PER_TENANT,
        max_bytes_per_tenant: int = DEFAULT_MAX_BYTES_PER_TENANT,
        compact_min_bytes: int = COMPACT_MIN_BYTES,
    ) -> None:
        self.path = path
        self.max_keys_per_tenant = max_keys_per_tenant
        self.max_bytes_per_tenant = max_bytes_per_tenant
        self.compact_min_bytes = compact_min_bytes
        # per tenant, oldest first: (key digest) -> entry
        self._entries: dict[str, OrderedDict[str, _Entry]] = {}
        self._bytes: dict[str, int] = {}  # per tenant: sum of its entries' sizes
        self._in_flight: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self.evicted = 0  # keys forgotten before their 24 h because a cap was reached
        self.compactions = 0
        self._compacting: asyncio.Task[None] | None = None
        self._pending: list[bytes] | None = None  # lines appended while compacting
        self._closed = False
        self._retry_at = compact_min_bytes  # no compaction below this file size
        self._load()
        self._file = open(path, "ab")  # noqa: SIM115 - held open for appends until close()
        self._file_bytes = self._file.tell()

    # ---- sizes

    @property
    def live_bytes(self) -> int:
        return sum(self._bytes.values())

    @property
    def file_bytes(self) -> int:
        return self._file_bytes

    def keys(self, tenant: str) -> int:
        return len(self._entries.get(tenant, ()))

    # ---- the file

    def _load(self) -> None:
        """Read the log, keep the last 24 h within the caps, and rewrite it compacted."""
        now = time.time()
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                parsed = _parse(line)
                if parsed is not None and now - parsed[2].at < TTL_SECONDS:
                    self._add(*parsed)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        _write_tmp(tmp, self._live_lines())
        os.replace(tmp, self.path)

    def _live_lines(self) -> list[bytes]:
        return [
            _line(tenant, key, e)
            for tenant, entries in self._entries.items()
            for key, e in entries.items()
        ]

    def _append(self, line: bytes) -> None:
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file_bytes += len(line)
        if self._pending is not None:
            self._pending.append(line)
        elif self._file_bytes > max(self._retry_at, COMPACT_FACTOR * self.live_bytes):
            self._pending = []
            self._compacting = asyncio.get_running_loop().create_task(self._compact())

    async def _compact(self) -> None:
        """Rewrite the file with the live entries on a worker thread; lines appended meanwhile
        go to the old file (still complete if we stop now) and are added to the new one."""
        self._pending = self._pending if self._pending is not None else []
        try:
            # a snapshot (cheap: references), serialized and written on the thread
            snapshot = [(t, list(entries.items())) for t, entries in self._entries.items()]
            tmp = self.path.with_suffix(".tmp")
            await asyncio.get_running_loop().run_in_executor(None, _write_snapshot, tmp, snapshot)
            if self._closed:
                return
            self._swap_in(tmp, self._pending)
            self.compactions += 1
            self._retry_at = self.compact_min_bytes
        except OSError as e:  # the old file is intact: keep appending to it, retry later
            log.error("idempotency file compaction failed: %s", e.strerror)
            self._retry_at = self._file_bytes + self.compact_min_bytes
        finally:
            self._pending = None

    def _swap_in(self, tmp: Path, appended: list[bytes]) -> None:
        """Add the lines appended while the thread wrote (few), then put the new file in place
        of the old and append to it from now on. Runs on the loop: no append can interleave."""
        with open(tmp, "ab") as f:
            f.writelines(appended)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._file.close()
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open until close()
        self._file_bytes = self._file.tell()

    # ---- the entries

    def _add(self, tenant: str, key: str, entry: _Entry) -> None:
        entries = self._entries.setdefault(tenant, OrderedDict())
        size = len(_line(tenant, key, entry))
        entry = replace(entry, size=size)
        old = entries.pop(key, None)
        self._bytes[tenant] = self._bytes.get(tenant, 0) + size - (old.size if old else 0)
        entries[key] = entry
        while entries and (
            len(entries) > self.max_keys_per_tenant
            or self._bytes[tenant] > self.max_bytes_per_tenant
        ):
            _, gone = entries.popitem(last=False)
            self._bytes[tenant] -= gone.size
            self.evicted += 1

    def _prune(self, now: float) -> None:
        """Forget what is older than 24 h (each tenant's entries are oldest first)."""
        for tenant, entries in self._entries.items():
            while entries:
                oldest = next(iter(entries.values()))
                if now - oldest.at < TTL_SECONDS:
                    break
                entries.popitem(last=False)
                self._bytes[tenant] -= oldest.size

    async def run(
        self,
        tenant: str,
        route: str,
        key: str,
        body: bytes,
        compute: Callable[[], Awaitable[Answer]],
    ) -> Answer:
        """The remembered answer for (tenant, route, key), or `compute()`'s, remembered if it
        succeeded. The same key on another route, or with another body, is a 422."""
        digest = key_digest(key)
        ident = (tenant, digest)
        body_sha = body_digest(body)
        now = time.time()
        self._prune(now)
        while True:
            entries = self._entries.get(tenant)
            entry = entries.get(digest) if entries is not None else None
            if entry is not None:
                if entry.route != route:
                    raise UnprocessableEntity("Idempotency-Key was used on another route")
                if entry.body_digest != body_sha:
                    raise UnprocessableEntity("Idempotency-Key was used with a different body")
                return entry.answer()
            waiting = self._in_flight.get(ident)
            if waiting is None:
                break
            try:  # the same request is being processed now: take its answer
                await asyncio.shield(waiting)
            except Exception:  # noqa: S112 - it failed: loop and try for real
                continue
            except asyncio.CancelledError:
                if waiting.cancelled():  # its client went away: try for real
                    continue
                raise
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._in_flight[ident] = fut
        try:
            answer = await compute()
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except Exception as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._in_flight[ident]
        if 200 <= answer.status < 300:
            packed = pack_answer(answer)
            entry = _Entry(now, route, body_sha, answer.status, answer.content_type, packed, 0)
            self._add(tenant, digest, entry)
            try:
                self._append(_line(tenant, digest, entry))
            except OSError as e:  # remembered until restart; the rows are stored: answer them
                log.error("idempotency key not persisted: %s", e.strerror)
        fut.set_result(answer)
        return answer

    def note(self, tenant: str, route: str, key: str, body: bytes, answer: Answer) -> bytes:
        """The entry `run` will remember for this answer, as a line: the spool keeps it with
        the request's rows, so a crash between the rows' fsync and this store's cannot make
        a retry store them twice (`restore` learns it at the next start)."""
        entry = _Entry(
            time.time(), route, body_digest(body), answer.status, answer.content_type,
            pack_answer(answer), 0,
        )  # fmt: skip
        return _line(tenant, key_digest(key), entry)

    def restore(self, notes: list[bytes]) -> int:
        """At start, before serving: remember the keys of requests whose rows the spool holds
        and that this store does not know (their answer may never have reached the client).
        Returns how many were added."""
        now = time.time()
        added: list[bytes] = []
        for line in notes:
            parsed = _parse(line)
            if parsed is None:
                continue
            tenant, key, entry = parsed
            if now - entry.at >= TTL_SECONDS or key in self._entries.get(tenant, {}):
                continue
            self._add(tenant, key, entry)
            added.append(_line(tenant, key, entry))
        if added:
            self._file.writelines(added)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file_bytes = self._file.tell()
        return len(added)

    def close(self) -> None:
        self._closed = True
        if self._compacting is not None:
            self._compacting.cancel()
        self._file.close()


def _parse(line: bytes) -> tuple[str, str, _Entry] | None:
    """(tenant, key digest, entry) of a stored line; None for a torn or foreign one."""
    try:
        d = orjson.loads(line)
        entry = _Entry(d["at"], d["p"], d["b"], d["s"], d["ct"], base64.b64decode(d["z"]), 0)
        return str(d["t"]), str(d["k"]), entry
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # a torn last line after a crash, or a line of an older format


def _line(tenant: str, key: str, e: _Entry) -> bytes:
    record = {
        "t": tenant, "p": e.route, "k": key, "b": e.body_digest, "at": round(e.at, 3),
        "s": e.status, "ct": e.content_type, "z": base64.b64encode(e.packed).decode(),
    }  # fmt: skip
    return orjson.dumps(record) + b"\n"


def _write_snapshot(tmp: Path, snapshot: list[tuple[str, list[tuple[str, _Entry]]]]) -> None:
    _write_tmp(tmp, [_line(t, k, e) for t, items in snapshot for k, e in items])


def _write_tmp(tmp: Path, lines: list[bytes]) -> None:
    with open(tmp, "wb") as f:
        f.writelines(lines)
        f.flush()
        os.fsync(f.fileno())
