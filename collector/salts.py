"""Salts for the cookieless daily visitor id: one per UTC day, `<data>/salts/<YYYY-MM-DD>.salt`
(0600), created on first use during its day and destroyed one grace hour after the day ends.

A salt is never created for a day that is over (plus grace): a late record gets no visitor id
rather than a salt that could link it to anything.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from anonymizer.pseudonym import DAY_MS

GRACE_MS = 3_600_000
SALT_BYTES = 32


def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


class SaltStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[int, bytes] = {}

    def _path(self, day: int) -> Path:
        return self.root / f"{_day_name(day)}.salt"

    def salts(self, now_ms: int) -> dict[int, bytes]:
        """Salts usable now: today's (created if needed), and yesterday's within the grace hour."""
        today = now_ms // DAY_MS
        out = {today: self._get(today, create=True)}
        if now_ms < today * DAY_MS + GRACE_MS:
            yesterday = self._get(today - 1, create=False)
            if yesterday:
                out[today - 1] = yesterday
        return out

    def _get(self, day: int, create: bool) -> bytes:
        cached = self._cache.get(day)
        if cached:
            return cached
        path = self._path(day)
        try:
            salt = path.read_bytes()
        except FileNotFoundError:
            if not create:
                return b""
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another worker made it first: use theirs
                return self._get(day, create=False)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(SALT_BYTES))
                f.flush()
                os.fsync(f.fileno())
            salt = path.read_bytes()
        self._cache[day] = salt
        return salt

    def sweep(self, now_ms: int) -> list[str]:
        """Destroy every salt whose day ended more than the grace hour ago; returns their days."""
        gone = []
        if self.root.exists():
            for path in self.root.glob("*.salt"):
                try:
                    day = (
                        int(
                            datetime.strptime(path.stem, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
                        )
                        // 86_400
                    )
                except ValueError:
                    continue
                if now_ms >= (day + 1) * DAY_MS + GRACE_MS:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    self._cache.pop(day, None)
                    gone.append(path.stem)
        return sorted(gone)
