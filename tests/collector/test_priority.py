"""The engine's threads run below the ingest path (collector/priority.py): checked on real
threads of this process, and on the running service's engine threads."""

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from collector.app import ENGINE_PRIORITY_S
from collector.config import parse_config
from collector.priority import PYTHON_THREAD, TASKS, lower_engine_threads, lower_this_thread

pytestmark = pytest.mark.skipif(not TASKS.is_dir(), reason="needs Linux /proc")


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def in_thread(fn: object) -> int:
    """Runs `fn` on a new thread; returns that thread's nice value afterwards."""
    out: list[int] = []

    def body() -> None:
        fn()  # type: ignore[operator]
        out.append(nice_of(threading.get_native_id()))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return out[0]


def test_lowering_a_thread_leaves_the_others_alone() -> None:
    main = nice_of(threading.get_native_id())
    assert in_thread(lambda: lower_this_thread(7)) == max(main, 7)
    assert nice_of(threading.get_native_id()) == main
    # never raised back: a thread already lower stays where it is; 0 changes nothing
    assert in_thread(lambda: (lower_this_thread(15), lower_this_thread(5))) == max(main, 15)
    assert in_thread(lambda: lower_this_thread(0)) == main


def test_the_engines_threads_are_found_by_name_and_lowered() -> None:
    """chDB is open in this process (the suite's engine): every thread it started runs at the
    nice value afterwards, Python's own threads do not move."""
    import chdb  # noqa: F401  - its pools start with the library

    before = {t.name: nice_of(int(t.name)) for t in TASKS.iterdir()}
    lower_engine_threads(3)
    engine = python = 0
    for task in TASKS.iterdir():
        tid = int(task.name)
        name = (task / "comm").read_text().strip()
        if name == PYTHON_THREAD:
            python += 1
            if task.name in before:
                assert nice_of(tid) == before[task.name]
        else:
            engine += 1
            assert nice_of(tid) >= 3, name
    assert engine > 0 and python > 0
    assert lower_engine_threads(3) == 0  # nothing left to lower


def test_the_setting_defaults_to_below_the_ingest_path(tmp_path: Path) -> None:
    assert parse_config("", tmp_path).storage.engine_nice == 10
    assert parse_config("[storage]\nengine_nice = 0\n", tmp_path).storage.engine_nice == 0


async def test_the_running_services_engine_yields_to_its_event_loop(tmp_path: Path) -> None:
    """`collector serve`: after records went through, the engine's threads (and the thread
    driving it) run at the configured nice value; the event loop's thread does not."""
    import aiohttp

    from tests.redteam.service import INGEST_KEY, running_service

    async with running_service(tmp_path, storage_extra="engine_nice = 12\n") as service:
        async with aiohttp.ClientSession() as s:
            body = [{"ip": "203.0.113.9", "path": "/a", "status": 200}] * 50
            headers = {"Authorization": f"Bearer {INGEST_KEY}"}
            async with s.post(f"{service.url}/v1/logs", json=body, headers=headers) as r:
                assert r.status == 202
        pid = service.proc.pid

        def threads() -> dict[str, set[int]]:
            nice: dict[str, set[int]] = {}
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):  # a thread ending meanwhile
                    name = (task / "comm").read_text().strip()
                    nice.setdefault(name, set()).add(
                        os.getpriority(os.PRIO_PROCESS, int(task.name))
                    )
            return nice

        # a pool thread started since the last look is lowered at the next (ENGINE_PRIORITY_S)
        deadline = time.monotonic() + ENGINE_PRIORITY_S + 5
        while True:
            nice = threads()
            engine = {n: v for n, v in nice.items() if n != PYTHON_THREAD}
            if all(min(v) >= 12 for v in engine.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0)
        assert 12 in nice[PYTHON_THREAD]  # the sink's thread
        assert engine and all(min(v) >= 12 for v in engine.values()), engine
