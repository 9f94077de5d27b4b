"""`Idempotency-Key`: a retried request (same tenant, same key, within 24 h) is not ingested
again and gets the first answer again, also after a restart.

Answers are kept in memory and appended (fsync'd) to `<data>/idempotency.jsonl`, which is
compacted to the last 24 h at start. Only the SHA-256 of the key and of the body are kept: a key
chosen by a client may carry anything. Answers hold counts and field names, never input values.
Only successful answers are remembered: a request that failed (503) may be retried for real.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from collector.errors import BadRequest, UnprocessableEntity

TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Entry:
    at: float
    body_sha256: str
    answer: Answer


def key_digest(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
    return hashlib.sha256(key.encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, path: Path, max_entries: int = 1_000_000) -> None:
        self.path = path
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._in_flight: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self._load()
        self._file = open(path, "ab")  # noqa: SIM115 - held open for appends until close()

    def _load(self) -> None:
        """Read the log, keep the last 24 h, and rewrite it compacted."""
        now = time.time()
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    d = orjson.loads(line)
                    entry = _Entry(
                        d["at"], d["b"], Answer(d["s"], d["ct"], base64.b64decode(d["r"]))
                    )
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a torn last line after a crash
                if now - entry.at < TTL_SECONDS:
                    self._entries[(d["t"], d["k"])] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for (tenant, key), e in self._entries.items():
                f.write(self._line(tenant, key, e))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @staticmethod
    def _line(tenant: str, key: str, e: _Entry) -> bytes:
        a = e.answer
        record = {
            "t": tenant, "k": key, "b": e.body_sha256, "at": e.at,
            "s": a.status, "ct": a.content_type, "r": base64.b64encode(a.body).decode(),
        }  # fmt: skip
        return orjson.dumps(record) + b"\n"

    def _prune(self, now: float) -> None:
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if now - oldest.at < TTL_SECONDS and len(self._entries) <= self.max_entries:
                return
            del self._entries[key]

    async def run(
        self, tenant: str, key: str, body: bytes, compute: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """The remembered answer for (tenant, key), or `compute()`'s, remembered if it succeeded."""
        ident = (tenant, key_digest(key))
        body_sha = hashlib.sha256(body).hexdigest()
        now = time.time()
        self._prune(now)
        while True:
            entry = self._entries.get(ident)
            if entry is not None:
                if entry.body_sha256 != body_sha:
                    raise UnprocessableEntity("Idempotency-Key was used with a different body")
                return entry.answer
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
            entry = _Entry(now, body_sha, answer)
            self._entries[ident] = entry
            self._file.write(self._line(*ident, entry))
            self._file.flush()
            os.fsync(self._file.fileno())
        fut.set_result(answer)
        return answer

    def close(self) -> None:
        self._file.close()
