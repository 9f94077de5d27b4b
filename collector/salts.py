"""Salts for the cookieless daily visitor id: one per UTC day, `<data>/salts/<YYYY-MM-DD>.salt`
(0600), created on first use and destroyed `keep_ms` after the day ends: the longest
`identifiers.late_window_hours` of the tenants' policies (at least the grace hour), so records
that arrive late (a shipper outage, a backfill) still get their day's visitor id.

A tenant uses a day's salt only within its own policy's window (`salts(now, window_ms)`), and a
salt is made for a past day only within it: after that a late record gets no visitor id (or
the policy's coarse fallback, anonymizer.anonymize) rather than a salt that could link it.

Collectors sharing one salt folder (`[storage] salts_dir`) make and use the same salt (the link
in `_create`); each sweep also reads the tombstones the others wrote and forgets, from memory,
every salt whose day is destroyed or due, whether or not this process unlinked the file.

Destroyed days are kept as tombstones (`<data>/salts/destroyed`, one day a line, fsync'd) written
before the salt is unlinked; no salt is ever used or made again for a day at or before the newest
tombstone, so a clock that jumps back (or jumped forward and returned) cannot bring a second salt
for a day whose salt was destroyed.

The sweep never raises: a file-system error (EMFILE, EROFS, EACCES...) on the listing, the
tombstone or one salt is counted, remembered as `sweep_failing`, and retried by the next sweep;
the other salts are still destroyed. `health` names what is wrong for `/readyz`: a salt still on
disk past its destruction time (`overdue`), or a sweep that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from anonymizer.pseudonym import DAY_MS
from collector.failures import describe
from collector.sealing import Sealer, seal, unseal

log = logging.getLogger(__name__)

GRACE_MS = 3_600_000
SALT_BYTES = 32
SWEEP_INTERVAL_S = 60.0
# a salt still on disk this long after its destruction time is overdue (two sweeps missed)
OVERDUE_SLACK_MS = 2 * int(SWEEP_INTERVAL_S * 1000)
TOMBSTONES = "destroyed"
_SALT = ".salt"
_TMP = ".salt.tmp-"  # a salt being written: `<day>.salt.tmp-<random>`


def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_MS // 1000, UTC).strftime("%Y-%m-%d")


def _day_of(name: str) -> int | None:
    """The day a `YYYY-MM-DD...` name is for, or None."""
    try:
        day = datetime.strptime(name[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(day.timestamp() * 1000) // DAY_MS


def _seal_name(day: int) -> str:
    return f"salt/{_day_name(day)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SaltStore:
    def __init__(
        self, root: Path, sealer: Sealer | None = None, keep_ms: Callable[[], int] | None = None
    ) -> None:
        self.root = root
        self._sealer = sealer  # `[storage] master_key_file`: files sealed (collector/sealing.py)
        # how long after its day a salt is kept: read at each sweep (a policy reload changes it)
        self.keep_ms = keep_ms or (lambda: GRACE_MS)
        self._cache: dict[int, bytes] = {}
        self._on_disk: set[int] = set()  # days whose salt file exists, as last seen or made
        # the newest destroyed day: in memory at once, in the tombstone file when written
        self._destroyed_through = self._read_tombstones()
        self._tombstoned_through = self._destroyed_through
        # health, for /readyz and /metrics
        self.destroyed_total = 0
        self.sweep_errors = 0
        self.sweep_failing: str | None = None  # the kinds of errors of the last sweep

    def _path(self, day: int) -> Path:
        return self.root / f"{_day_name(day)}{_SALT}"

    def _read_tombstones(self) -> int | None:
        """The newest destroyed day on record. An unreadable file stops the start (fail closed):
        without it a past day's salt could be made again."""
        try:
            text = (self.root / TOMBSTONES).read_text(errors="replace")
        except FileNotFoundError:
            return None
        days = [d for line in text.splitlines() if (d := _day_of(line.strip())) is not None]
        return max(days, default=None)

    def _destroy_at(self, day: int) -> int:
        return (day + 1) * DAY_MS + max(GRACE_MS, self.keep_ms())

    def _destroyed(self, day: int) -> bool:
        return self._destroyed_through is not None and day <= self._destroyed_through

    def salts(self, now_ms: int, window_ms: int = GRACE_MS) -> Mapping[int, bytes]:
        """Salts usable now: today's (created if needed), and a past day's while `now_ms` is
        within `window_ms` after it (at most `keep_ms`), made on first use; none for a day
        already destroyed."""
        today = now_ms // DAY_MS
        first = (now_ms - min(max(window_ms, GRACE_MS), max(GRACE_MS, self.keep_ms()))) // DAY_MS
        return _Window(self, first, today)

    def _get(self, day: int, create: bool) -> bytes:
        if self._destroyed(day):  # destroyed, or being destroyed: never used, never made again
            return b""
        cached = self._cache.get(day)
        if cached:
            return cached
        path = self._path(day)
        try:
            salt = unseal(self._sealer, _seal_name(day), path.read_bytes())
        except FileNotFoundError:
            if not create:
                return b""
            salt = self._create(day, replace=False)
        if len(salt) != SALT_BYTES:  # torn by a crash or a full disk (older versions): unusable
            if not create:
                return b""
            salt = self._create(day, replace=True)
        self._cache[day] = salt
        self._on_disk.add(day)
        return salt

    def _create(self, day: int, replace: bool) -> bytes:
        """Write a new salt whole (temp file, fsync, link into place), so a full disk or a crash
        leaves no short salt; if another worker made it first, theirs is used."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._path(day)
        tmp = self.root / f"{_day_name(day)}{_TMP}{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(seal(self._sealer, _seal_name(day), secrets.token_bytes(SALT_BYTES)))
                f.flush()
                os.fsync(f.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            _fsync_dir(self.root)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._on_disk.add(day)
        return unseal(self._sealer, _seal_name(day), path.read_bytes())

    def sweep(self, now_ms: int) -> list[str]:
        """Destroy every salt whose day ended more than the grace hour ago; returns their days.
        Never raises: errors are counted and kept in `sweep_failing` until a sweep succeeds."""
        errors: list[str] = []
        try:  # collectors sharing the folder: another one may have destroyed days already
            shared = self._read_tombstones()
        except OSError:  # the same file's write below fails too, and is counted there
            pass
        else:
            if shared is not None and not self._destroyed(shared):
                self._destroyed_through = self._tombstoned_through = shared
        for day in [d for d in self._cache if self._destroyed(d) or now_ms >= self._destroy_at(d)]:
            del self._cache[day]  # out of memory too, whoever unlinked the file
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            names = []
        except OSError as e:
            self._record([f"listing: {describe(e)}"])
            return []
        found = {name: _day_of(name) for name in names if _SALT in name}
        self._on_disk = {d for n, d in found.items() if d is not None and n.endswith(_SALT)}
        due = {n: d for n, d in found.items() if d is not None and now_ms >= self._destroy_at(d)}
        due.update({n: d for n, d in found.items() if d is not None and self._destroyed(d)})
        if due:
            newest = max(due.values())
            if not self._destroyed(newest):
                self._destroyed_through = newest  # from now on never used nor made again
            for day in due.values():
                self._cache.pop(day, None)
        if self._destroyed_through != self._tombstoned_through:
            try:
                self._write_tombstone()
            except OSError as e:  # the salt goes all the same: destruction comes first
                errors.append(f"tombstone: {describe(e)}")
        gone = []
        for name, day in sorted(due.items()):
            try:
                os.unlink(self.root / name)
            except FileNotFoundError:
                pass
            except OSError as e:
                errors.append(f"{_day_name(day)}: {describe(e)}")
                continue
            if name.endswith(_SALT):
                gone.append(_day_name(day))
                self._on_disk.discard(day)
        if gone:  # the unlinks themselves made durable
            try:
                _fsync_dir(self.root)
            except OSError as e:
                errors.append(f"fsync: {describe(e)}")
        self.destroyed_total += len(gone)
        self._record(errors)
        return sorted(gone)

    def _write_tombstone(self) -> None:
        assert self._destroyed_through is not None
        path = self.root / TOMBSTONES
        new = not path.exists()
        with open(path, "a", encoding="ascii") as f:
            f.write(_day_name(self._destroyed_through) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if new:
            _fsync_dir(self.root)
        self._tombstoned_through = self._destroyed_through

    def _record(self, errors: list[str]) -> None:
        if errors:
            self.sweep_errors += len(errors)
            self.sweep_failing = "; ".join(sorted(set(errors)))[:300]
            log.warning("salt sweep failed, will retry: %s", self.sweep_failing)
        elif self.sweep_failing is not None:
            log.warning("salt sweep recovered")
            self.sweep_failing = None

    def record_error(self, e: BaseException) -> None:
        """A sweep that raised (it should not): counted and shown like its own errors."""
        self._record([f"sweep: {describe(e)}"])

    def overdue(self, now_ms: int, slack_ms: int = OVERDUE_SLACK_MS) -> list[str]:
        """Days whose salt is still on disk (as far as known) past its destruction time plus
        `slack_ms`, or after its tombstone: the unlinkability promise is not being kept."""
        return sorted(
            _day_name(d)
            for d in self._on_disk
            if self._destroyed(d) or now_ms >= self._destroy_at(d) + slack_ms
        )

    def health(self, now_ms: int, slack_ms: int = OVERDUE_SLACK_MS) -> list[str]:
        """Reasons for `/readyz` to say not ready; none when all is well."""
        reasons = []
        if late := self.overdue(now_ms, slack_ms):
            reasons.append(f"visitor salt destruction overdue: {', '.join(late)}")
        if self.sweep_failing is not None:
            reasons.append(f"salt sweep failing: {self.sweep_failing}")
        return reasons


class _Window(Mapping[int, bytes]):
    """The salts of days `first..today`: today's made at once (so a failing disk shows at the
    start of a request), a past day's on first use (only days that late records name)."""

    def __init__(self, store: SaltStore, first: int, today: int) -> None:
        self.store, self.first, self.today = store, first, today
        self._salts: dict[int, bytes] = {}
        if salt := store._get(today, create=True):
            self._salts[today] = salt

    def __getitem__(self, day: int) -> bytes:
        if day not in self._salts:
            if not self.first <= day < self.today:
                raise KeyError(day)
            if not (salt := self.store._get(day, create=True)):
                raise KeyError(day)
            self._salts[day] = salt
        return self._salts[day]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._salts))

    def __len__(self) -> int:
        return len(self._salts)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


async def sweep_forever(
    store: SaltStore,
    interval_s: float = SWEEP_INTERVAL_S,
    clock: Callable[[], int] = wall_clock_ms,
) -> None:
    """Sweep now and every `interval_s`; after a failed sweep, retry sooner (1 s, doubling).
    Survives anything but cancellation: the promise must not end silently."""
    retry_s = min(1.0, interval_s)
    while True:
        try:
            gone = store.sweep(clock())
            if gone:
                log.info("destroyed visitor-id salts of %s", ", ".join(gone))
        except Exception as e:
            store.record_error(e)
        if store.sweep_failing is not None:
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, interval_s)
        else:
            retry_s = min(1.0, interval_s)
            await asyncio.sleep(interval_s)
