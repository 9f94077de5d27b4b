"""The engine's work runs below the ingest path's priority.

The embedded engine's inserts and merges run on the ingest process's cores. At equal priority
an insert of one spool segment (~100-200 ms of CPU) takes half of the core from the event loop
for as long as it runs, and every request answered meanwhile is late: that was the p99 ack
latency at half load. The engine's work can wait: the rows it inserts are already durable in the
spool, and the spool's high-water mark (503 above it) bounds how far it may fall behind. So the
thread that drives the engine and the engine's own threads (chDB names its threads; Python's
keep the name `python`) get a higher nice value. Linux keeps nice per thread; a thread inherits
its creator's, but chDB starts some pools before the engine is opened, so the engine's threads
are found by name and lowered again from time to time (pools grow on demand).

Nice only orders who runs first when both want the core: an idle core still runs the engine at
full speed. Elsewhere than Linux this is a no-op.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("collector.priority")

TASKS = Path("/proc/self/task")
PYTHON_THREAD = "python"  # the name Linux gives the threads Python starts (3.11 names none)


def lower_this_thread(nice: int) -> None:
    """The calling thread runs at `nice` (never raised back: a higher value stays)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    _lower(threading.get_native_id(), nice)


def lower_engine_threads(nice: int) -> int:
    """Every thread of this process that the engine started (any name but Python's) runs at
    `nice` or lower priority; returns how many were lowered now."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return 0
    try:
        tasks = list(TASKS.iterdir())
    except OSError:
        return 0
    lowered = 0
    for task in tasks:
        try:
            name = (task / "comm").read_text().rstrip("\n")
        except OSError:  # the thread ended meanwhile
            continue
        if name != PYTHON_THREAD and task.name.isdigit() and _lower(int(task.name), nice):
            lowered += 1
    return lowered


def _lower(tid: int, nice: int) -> bool:
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if current >= nice:
            return False
        os.setpriority(os.PRIO_PROCESS, tid, nice)  # Linux: this one thread
        return True
    except OSError as e:  # the thread ended, or a sandbox refuses: priorities are a nicety
        log.debug("thread %d keeps its priority: %s", tid, e)
        return False
