"""The spool: where an accepted request's anonymized rows become durable before its 202.

Layout: `<storage.path>/spool/<table>/<seq>-<nonce>.seg`, one append-only segment file open per
table at a time. A segment is a sequence of records, one per request and table:

    record  = u32 payload length | u32 CRC-32 of the payload | payload     (little-endian)
    payload = u32 note length | note | rows (JSONEachRow lines joined by "\\n")

The note is the request's Idempotency-Key entry (`IdempotencyStore.note`), empty without a key:
rows and key are durable together, so a retry of a request whose 202 was lost in a crash is
answered from the key, not stored twice (the store learns the keys found here at start).

Group commit: a request hands in its rows and waits; one task writes every waiting request's
records and fsyncs each table's segment once (on a worker thread), then answers them all. A
failed write or fsync cuts the segments back to what was durable before, and the group is
answered 503: nothing of a refused request is shipped.

A segment is sealed (closed, handed to the shipper) when it reaches `segment_bytes` or
`segment_age_ms`; it is deleted by the shipper only after the engine confirmed its insert. A torn
tail (a record cut by a crash or a full disk) fails its length or CRC check: `read_records` stops
before it and `recover` cuts it off, so it is never half-inserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import secrets
import struct
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from collector.config import SpoolConfig
from collector.errors import ServiceUnavailable
from collector.failures import describe

log = logging.getLogger(__name__)

FRAME = struct.Struct("<II")  # payload length, CRC-32 of the payload
NOTE = struct.Struct("<I")
MAX_RECORD_BYTES = 1 << 30  # a length above this is damage, not a record
SUFFIX = ".seg"  # sealed: complete, may be shipped
OPEN_SUFFIX = ".open"  # being written; renamed to .seg when sealed (or at the next start)
PRUNE_S = 0.5  # shipped by another process: how often its deletions are noticed
RETRY_AFTER_S = 5
RESTART_S = 0.5  # the commit loop restarts this soon after an unexpected error
PROBE_S = 1.0  # while writes fail, a probe write this often
PROBE_BYTES = 64 * 1024


def encode_record(rows: list[bytes], note: bytes = b"") -> bytes:
    """One framed record: a request's rows for one table, and its idempotency note."""
    payload = NOTE.pack(len(note)) + note + b"\n".join(rows)
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True, slots=True)
class Record:
    note: bytes
    # JSONEachRow lines joined by "\n": a view into the record's payload, not a copy of it
    rows: memoryview | bytes

    def row_count(self) -> int:
        return bytes(self.rows).count(b"\n") + 1 if self.rows else 0


def decode_payload(payload: memoryview) -> Record:
    (n,) = NOTE.unpack_from(payload)
    return Record(bytes(payload[NOTE.size : NOTE.size + n]), payload[NOTE.size + n :])


def iter_records(f: BinaryIO, end: int) -> Iterator[tuple[Record, int]]:
    """The complete, intact records of the first `end` bytes of `f`, one at a time, each with
    the length they cover so far: a record cut short or failing its CRC ends the segment
    (everything after it is a torn tail). One record in memory at a time."""
    at = 0
    while at + FRAME.size <= end:
        head = f.read(FRAME.size)
        if len(head) < FRAME.size:
            return
        length, crc = FRAME.unpack(head)
        start = at + FRAME.size
        if length < NOTE.size or length > MAX_RECORD_BYTES or start + length > end:
            return
        payload = f.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        (n,) = NOTE.unpack_from(payload)
        if NOTE.size + n > length:
            return
        at = start + length
        yield decode_payload(memoryview(payload)), at


def read_records(data: bytes) -> tuple[list[Record], int]:
    """`iter_records` over bytes in memory: the intact records and the length they cover."""
    out: list[Record] = []
    good = 0
    for record, at in iter_records(io.BytesIO(data), len(data)):
        out.append(record)
        good = at
    return out, good


@dataclass(eq=False)
class Segment:
    table: str
    seq: int
    path: Path
    created: float  # wall clock of its first record: the ship lag counts from here
    size: int = 0  # bytes durable (fsync'd), or found at start
    records: int = 0
    rows: int = 0
    fd: int | None = None
    holds: int = 0  # records whose request has not settled its Idempotency-Key yet
    sealed: bool = False

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(eq=False)
class Ticket:
    """A request's records in the spool. Released once the request's Idempotency-Key answer is
    stored (or it failed): a segment holding unreleased records is not shipped yet, so a key
    and its rows can never be lost apart (rows shipped and gone, key not yet written)."""

    spool: Spool
    segments: list[Segment] = field(default_factory=list)
    released: bool = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        for seg in self.segments:
            seg.holds -= 1
            if seg.holds == 0 and seg.sealed:
                self.spool.shippable(seg.table)


@dataclass(eq=False)
class _Waiting:
    records: dict[str, bytes]  # table -> framed record
    rows: dict[str, int]  # table -> rows in it
    future: asyncio.Future[Ticket]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class Spool:
    """The writer side: group commit into per-table segments, sealing, the high-water mark."""

    def __init__(
        self,
        root: Path,
        tables: Iterable[str],
        config: SpoolConfig,
        *,
        shipped_elsewhere: bool = False,
    ) -> None:
        self.root = root
        # an ingest worker of `serve --workers N`: the primary ships (and deletes) its sealed
        # segments; it notices the deletions to keep its size (the high-water mark) right
        self.shipped_elsewhere = shipped_elsewhere
        self.config = config
        self.tables = list(tables)
        self._open: dict[str, Segment] = {}
        self.sealed: dict[str, deque[Segment]] = {t: deque() for t in self.tables}
        self.ready_events: dict[str, asyncio.Event] = {}
        self._next_seq: dict[str, int] = dict.fromkeys(self.tables, 0)
        self._waiting: list[_Waiting] = []
        self._in_hand: list[_Waiting] = []  # the group being committed
        self._wake: asyncio.Event | None = None
        self._commit_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.bytes_by_table: dict[str, int] = dict.fromkeys(self.tables, 0)
        self.rows_by_table: dict[str, int] = dict.fromkeys(self.tables, 0)
        self.failing: str | None = None  # the kind of the last write/fsync failure, until a success
        # group commit figures, for /metrics and the issue notes
        self.commits = 0
        self.committed_requests = 0
        self.largest_group = 0
        self.commit_errors = 0
        self.torn_tails_cut = 0

    # ---- sizes

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_table.values())

    def segments(self, table: str) -> int:
        return len(self.sealed[table]) + (1 if table in self._open else 0)

    def oldest(self, table: str) -> float | None:
        """Wall time of the oldest record of `table` not yet shipped."""
        if self.sealed[table]:
            return self.sealed[table][0].created
        seg = self._open.get(table)
        return seg.created if seg is not None and seg.records else None

    @property
    def queued_rows(self) -> int:
        return sum(self.rows_by_table.values())

    @property
    def full(self) -> bool:
        return self.total_bytes >= self.config.max_bytes

    def health(self) -> list[str]:
        """Reasons the spool cannot take a request now, for `/readyz`."""
        reasons = []
        if self.failing is not None:
            reasons.append(f"spool is failing: {self.failing}")
        if self.full:
            reasons.append(f"spool is above its high-water mark ({self.config.max_bytes} bytes)")
        return reasons

    # ---- start: what a previous run left

    def recover(self) -> list[bytes]:
        """Blocking, before serving: every segment left by a previous run is checked (a torn
        tail cut off, an empty one removed) and queued for shipping, oldest first. Returns the
        Idempotency-Key notes found, for the key store. Reads one segment at a time."""
        notes: list[bytes] = []
        for table in self.tables:
            folder = self.root / table
            folder.mkdir(parents=True, exist_ok=True)
            found = [*folder.glob("*" + SUFFIX), *folder.glob("*" + OPEN_SUFFIX)]
            for path in sorted(found, key=lambda p: (_seq_of(p) or 0, p.name)):
                seq = _seq_of(path)
                if seq is None:
                    continue
                self._next_seq[table] = max(self._next_seq[table], seq + 1)
                records = rows = good = 0
                with open(path, "r+b") as f:  # record by record: one in memory at a time
                    size = os.fstat(f.fileno()).st_size
                    for record, good in iter_records(f, size):  # noqa: B007 - read after
                        records += 1
                        rows += record.row_count()
                        if record.note:
                            notes.append(record.note)
                    if good < size:
                        f.truncate(good)
                        f.flush()
                        os.fsync(f.fileno())
                if good < size:
                    self.torn_tails_cut += 1
                    log.warning(
                        "spool segment %s/%s: cut a torn tail of %d bytes after %d records",
                        table, path.name, size - good, records,
                    )  # fmt: skip
                if not records:
                    path.unlink()
                    continue
                if path.suffix == OPEN_SUFFIX:
                    path = path.rename(path.with_suffix(SUFFIX))
                seg = Segment(table, seq, path, path.stat().st_mtime, good, records, rows)
                seg.sealed = True
                self.sealed[table].append(seg)
                self.bytes_by_table[table] += good
                self.rows_by_table[table] += rows
            _fsync_dir(folder)
        return notes

    # ---- running

    def start(self) -> None:
        self._wake = asyncio.Event()
        self.ready_events = {t: asyncio.Event() for t in self.tables}
        for t in self.tables:
            if self.sealed[t]:
                self.ready_events[t].set()
        self._task = asyncio.create_task(self._supervised(), name="spool-commit")

    def shippable(self, table: str) -> None:
        if table in self.ready_events:
            self.ready_events[table].set()

    async def submit(self, rows: dict[str, list[bytes]], note: bytes = b"") -> Ticket:
        """Returns once the rows are fsync'd in the spool (with a ticket to release when the
        request is settled); raises `ServiceUnavailable` when they are not accepted."""
        if not any(rows.values()):
            return Ticket(self)  # every record rejected: nothing to make durable
        if self._closing or self._task is None or self._task.done():
            raise ServiceUnavailable("shutting down", retry_after=RETRY_AFTER_S)
        if self.full:
            raise ServiceUnavailable("spool is full", retry_after=RETRY_AFTER_S)
        records = {t: encode_record(r, note) for t, r in rows.items() if r}
        fut: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(records, {t: len(r) for t, r in rows.items() if r}, fut))
        assert self._wake is not None
        self._wake.set()
        return await fut

    async def _supervised(self) -> None:
        """`_run` should never raise; if it does, the requests waiting get 503 (nothing of
        theirs was written: that happens only in `_commit`, which answers its own group) and
        the loop starts again, so no request waits on a dead task."""
        while True:
            try:
                await self._run()
                return
            except Exception as e:
                self.commit_errors += 1
                log.error("spool commit loop failed (%s); restarting", describe(e))
                waiting, self._waiting = self._in_hand + self._waiting, []
                self._in_hand = []
                for w in waiting:
                    if not w.future.done():
                        w.future.set_exception(
                            ServiceUnavailable("spool is failing", retry_after=RETRY_AFTER_S)
                        )
                await asyncio.sleep(RESTART_S)

    async def _run(self) -> None:
        assert self._wake is not None
        window = self.config.commit_window_ms / 1000
        while True:
            timeout = self._next_seal_in()
            if self.failing is not None:  # with no traffic, find out when writes work again
                timeout = PROBE_S if timeout is None else min(timeout, PROBE_S)
            if self.shipped_elsewhere:
                self._prune()
                timeout = PRUNE_S if timeout is None else min(timeout, PRUNE_S)
            if not self._waiting and not self._closing:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    if self.failing is not None:
                        await self._probe()
            self._wake.clear()
            if self._waiting and window and not self._closing:
                await asyncio.sleep(window)  # let the requests of a short window join the group
            self._seal_due()
            if self._waiting:
                group, self._waiting = self._waiting, []
                self._in_hand = group
                async with self._commit_lock:
                    await self._commit(group)
                self._in_hand = []
            if self._closing and not self._waiting:
                return

    async def _probe(self) -> None:
        try:
            await asyncio.to_thread(_probe_write, self.root)
        except OSError:
            return
        log.warning("spool writes work again")
        self.failing = None

    def _next_seal_in(self) -> float | None:
        ages = [s.created for s in self._open.values() if s.records]
        if not ages:
            return None
        due = min(ages) + self.config.segment_age_ms / 1000
        return max(0.0, due - time.time())

    async def seal_open(self) -> None:
        """Seal every open segment now (between two commits): a drain ships them at once."""
        async with self._commit_lock:
            self._seal_due(everything=True)

    def _seal_due(self, everything: bool = False) -> None:
        now = time.time()
        for seg in list(self._open.values()):
            if not seg.records:
                continue
            if (
                everything
                or seg.size >= self.config.segment_bytes
                or now - seg.created >= self.config.segment_age_ms / 1000
            ):
                self._seal(seg)

    def _seal(self, seg: Segment) -> None:
        """Everything in `seg` is durable (sealing happens between commits): hand it over."""
        del self._open[seg.table]
        if seg.fd is not None:
            with contextlib.suppress(OSError):
                os.close(seg.fd)
            seg.fd = None
        try:  # the name says it is complete: another process (the primary) may ship it now
            seg.path = seg.path.rename(seg.path.with_suffix(SUFFIX))
            _fsync_dir(seg.path.parent)
        except OSError as e:  # shipped from here all the same; renamed at the next start
            log.error("spool segment %s/%s not renamed: %s", seg.table, seg.name, describe(e))
        seg.sealed = True
        self.sealed[seg.table].append(seg)
        if seg.holds == 0:
            self.shippable(seg.table)

    def _segment_for(self, table: str) -> Segment:
        seg = self._open.get(table)
        if seg is None:
            seq = self._next_seq[table]
            self._next_seq[table] = seq + 1
            path = self.root / table / f"{seq:012d}-{secrets.token_hex(4)}{OPEN_SUFFIX}"
            seg = Segment(table, seq, path, time.time())
            self._open[table] = seg
        return seg

    async def _commit(self, group: list[_Waiting]) -> None:
        by_table: dict[str, list[bytes]] = {}
        for w in group:
            for table, data in w.records.items():
                by_table.setdefault(table, []).append(data)
        segs = {t: self._segment_for(t) for t in by_table}
        try:
            await asyncio.to_thread(_write_group, segs, by_table)
        except Exception as e:  # any failure: nothing of this group is kept, all get 503
            self.commit_errors += 1
            reason = describe(e)
            if self.failing is None:
                log.error("spool write failed: %s", reason)
            self.failing = reason
            for seg in segs.values():
                if seg.fd is not None:  # a file that could not be cut back is not written again
                    try:
                        os.ftruncate(seg.fd, seg.size)
                    except OSError:
                        self._abandon(seg)
                if not seg.records and seg.fd is None:
                    self._open.pop(seg.table, None)
            for w in group:
                if not w.future.done():
                    w.future.set_exception(
                        ServiceUnavailable("spool is failing", retry_after=RETRY_AFTER_S)
                    )
            return
        if self.failing is not None:
            log.warning("spool writes work again")
            self.failing = None
        for table, chunks in by_table.items():
            seg = segs[table]
            added = sum(len(c) for c in chunks)
            seg.size += added
            seg.records += len(chunks)
            self.bytes_by_table[table] += added
        for w in group:
            for table, n in w.rows.items():
                segs[table].rows += n
                self.rows_by_table[table] += n
        self.commits += 1
        self.committed_requests += len(group)
        self.largest_group = max(self.largest_group, len(group))
        for w in group:
            ticket = Ticket(self, [segs[t] for t in w.records])
            for seg in ticket.segments:
                seg.holds += 1
            if w.future.done():  # the request went away: its rows are stored anyway
                ticket.release()
            else:
                w.future.set_result(ticket)
        self._seal_due()

    def _abandon(self, seg: Segment) -> None:
        """A segment whose tail could not be cut back: its torn tail is cut when shipped or at
        the next start; new records go to a new segment."""
        if seg.fd is not None:
            with contextlib.suppress(OSError):
                os.close(seg.fd)
            seg.fd = None
        if seg.records:
            self._seal(seg)
        else:
            self._open.pop(seg.table, None)

    def _prune(self) -> None:
        """Forget the sealed segments another process shipped (their files are gone)."""
        for queue in self.sealed.values():
            for seg in [s for s in queue if not s.path.exists()]:
                self.shipped(seg)

    def shipped(self, seg: Segment) -> None:
        """The engine confirmed `seg`'s insert: delete it."""
        self.sealed[seg.table].remove(seg)
        self.bytes_by_table[seg.table] -= seg.size
        self.rows_by_table[seg.table] -= seg.rows
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()

    async def close(self) -> None:
        """Stop taking requests, commit the group in hand, seal every open segment."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait({task})
        for w in self._waiting:
            if not w.future.done():
                w.future.set_exception(
                    ServiceUnavailable("shutting down", retry_after=RETRY_AFTER_S)
                )
        self._waiting.clear()
        self._seal_due(everything=True)
        for seg in list(self._open.values()):  # empty ones
            self._abandon(seg)


def _write_group(segs: dict[str, Segment], by_table: dict[str, list[bytes]]) -> None:
    """On a worker thread: append each table's records to its segment, fsync each once."""
    new_dirs = set()
    for table, chunks in by_table.items():
        seg = segs[table]
        if seg.fd is None:
            seg.path.parent.mkdir(parents=True, exist_ok=True)
            seg.fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            new_dirs.add(seg.path.parent)
        _write_all(seg.fd, b"".join(chunks))
    for table in by_table:
        fd = segs[table].fd
        assert fd is not None
        os.fsync(fd)
    for folder in new_dirs:  # a new file's name is durable once its folder is synced
        _fsync_dir(folder)


def _probe_write(root: Path) -> None:
    """A scratch write and fsync in the spool folder: raises while the disk refuses."""
    path = root / ".probe"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, bytes(PROBE_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def scan_workers(root: Path, tables: list[str]) -> list[Segment]:
    """Blocking: the sealed segments under `<root>/w<k>/<table>/`, as the primary ships them."""
    out = []
    for worker in sorted(root.glob("w*")):
        for table in tables:
            for path in sorted((worker / table).glob("*" + SUFFIX)):
                seq = _seq_of(path)
                if seq is None:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = path.stat()
                    out.append(Segment(table, seq, path, st.st_mtime, st.st_size, sealed=True))
    return out


def _seq_of(path: Path) -> int | None:
    head = path.stem.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def read_segment(seg: Segment) -> tuple[list[Record], bool]:
    """Blocking: the intact records of a sealed segment (one segment in memory at a time), and
    whether all of its durable bytes were intact."""
    with open(seg.path, "rb") as f:
        data = f.read(seg.size)
    records, good = read_records(data)
    return records, good == seg.size
