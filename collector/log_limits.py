"""A cap on repeated log lines: a flood of the same message cannot fill the disk or drown the
lines that matter.

Thousands of idle or malformed connections make the same line (a rejected request, a shed
connection, an accept error) thousands of times. `RepeatLimiter` is a handler filter: per key
(logger name and message template, or the record's own `log_limit_key`) it lets `burst` lines
through per `window_s` seconds, drops the rest and, once the window is over, writes one summary
line "suppressed K similar lines". The summary names the logger and the level, never the
message: the dropped lines' arguments may quote input.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

BURST = 10  # lines per key per window
WINDOW_S = 10.0
MAX_KEYS = 1024  # distinct templates tracked at once; beyond, the oldest window is closed early
_DIGITS = re.compile(r"\d+")


@dataclass(slots=True)
class _Window:
    start: float
    logger: str
    level: int
    passed: int = 0
    dropped: int = 0


class RepeatLimiter(logging.Filter):
    """Install on a handler (`handler.addFilter(RepeatLimiter(handler))`): a filter on the
    handler sees the records of every logger, where a logger's filter would miss its children.

    A record may set `log_limit_key` (via `extra=`): None exempts it (an access line of a
    successful request), any other hashable value replaces the default key.
    """

    def __init__(
        self,
        handler: logging.Handler,
        burst: int = BURST,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.handler = handler
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[Hashable, _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "log_limit_summary", False):
            return True
        key = getattr(record, "log_limit_key", _DEFAULT)
        if key is None:
            return True
        if key is _DEFAULT:
            key = (record.name, record.levelno, template_key(record.msg))
        now = self.clock()
        with self._lock:
            closed = self._close_expired(now)
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) >= MAX_KEYS:
                    oldest = next(iter(self._windows))
                    closed.append(self._windows.pop(oldest))
                window = self._windows[key] = _Window(now, record.name, record.levelno)
            passed = window.passed < self.burst
            if passed:
                window.passed += 1
            else:
                window.dropped += 1
        self._summarise(closed)
        return passed

    def flush_suppressed(self) -> None:
        """Write the summaries of every open window (at shutdown)."""
        with self._lock:
            closed = list(self._windows.values())
            self._windows.clear()
        self._summarise(closed)

    def _close_expired(self, now: float) -> list[_Window]:
        expired = [k for k, w in self._windows.items() if now - w.start >= self.window_s]
        return [self._windows.pop(k) for k in expired]

    def _summarise(self, closed: list[_Window]) -> None:
        for w in closed:
            if not w.dropped:
                continue
            summary = logging.LogRecord(
                w.logger,
                w.level,
                __file__,
                0,
                "suppressed %d similar lines from %s (at most %d per %.0f s are written)",
                (w.dropped, w.logger, self.burst, self.window_s),
                None,
            )
            summary.log_limit_summary = True
            self.handler.handle(summary)


_DEFAULT = object()


def template_key(msg: object) -> str:
    """What makes two messages "the same": the first line of the template with numbers blanked,
    so that messages formatted before logging (asyncio's "Task exception was never retrieved"
    followed by the task, an f-string with a count) still group."""
    first = str(msg).split("\n", 1)[0][:200]
    return _DIGITS.sub("#", first)


def install(handler: logging.Handler) -> RepeatLimiter:
    limiter = RepeatLimiter(handler)
    handler.addFilter(limiter)
    return limiter


def flush_suppressed() -> None:
    """Summaries of the lines still being suppressed, from every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            if isinstance(f, RepeatLimiter):
                f.flush_suppressed()
