"""The batcher against the real embedded engine; failures are injected around the real insert."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.batcher import Batcher
from collector.config import BatchConfig
from collector.errors import ServiceUnavailable, SinkError
from collector.sink_chdb import ChdbSink


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[ChdbSink]:
    s = ChdbSink(tmp_path / "chdb", "batcher_test", tmp_path / "tmp")
    s.execute("CREATE TABLE t (n UInt32) ENGINE = MergeTree ORDER BY n "
              "SETTINGS non_replicated_deduplication_window = 100")  # fmt: skip
    yield s
    s.close()


def rows(*ns: int) -> list[bytes]:
    return [orjson.dumps({"n": n}) for n in ns]


def count(sink: ChdbSink) -> int:
    return int(sink.query("SELECT count() AS c FROM t")[0]["c"])


class Recorder:
    """Calls the real sink, after failing the first `fail` attempts (or landing then failing)."""

    def __init__(self, sink: ChdbSink, fail: int = 0, land_then_fail: bool = False) -> None:
        self.sink, self.fail, self.land_then_fail = sink, fail, land_then_fail
        self.calls: list[tuple[int, str]] = []

    async def __call__(self, table: str, body: bytes, token: str) -> None:
        self.calls.append((body.count(b"\n") + 1, token))
        if self.fail:
            self.fail -= 1
            if self.land_then_fail:  # the insert landed but its answer was lost
                self.sink.insert(table, body, token)
            raise SinkError("injected")
        self.sink.insert(table, body, token)


async def test_flush_at_max_rows_groups_requests(sink: ChdbSink) -> None:
    rec = Recorder(sink)
    b = Batcher("t", rec, BatchConfig(max_rows=4, max_delay_ms=60_000))
    b.start()
    await asyncio.wait_for(asyncio.gather(b.submit(rows(1, 2)), b.submit(rows(3, 4))), 5)
    assert [c for c, _ in rec.calls] == [4]
    assert count(sink) == 4
    await b.close()


async def test_flush_after_delay(sink: ChdbSink) -> None:
    rec = Recorder(sink)
    b = Batcher("t", rec, BatchConfig(max_rows=1000, max_delay_ms=30))
    b.start()
    await asyncio.wait_for(b.submit(rows(1)), 5)
    assert count(sink) == 1
    await b.close()


async def test_retry_uses_the_same_token_and_is_not_stored_twice(sink: ChdbSink) -> None:
    rec = Recorder(sink, fail=1, land_then_fail=True)
    b = Batcher("t", rec, BatchConfig(max_rows=1, max_delay_ms=0, insert_retries=2))
    b.start()
    await b.submit(rows(1, 2, 3))
    assert len(rec.calls) == 2 and rec.calls[0][1] == rec.calls[1][1]
    assert count(sink) == 3
    await b.close()


async def test_exhausted_retries_answer_503_and_nothing_is_accepted(sink: ChdbSink) -> None:
    rec = Recorder(sink, fail=10)
    b = Batcher("t", rec, BatchConfig(max_rows=1, max_delay_ms=0, insert_retries=1))
    b.start()
    with pytest.raises(ServiceUnavailable):
        await b.submit(rows(1))
    assert count(sink) == 0
    rec.fail = 0
    await b.submit(rows(2))  # recovers once storage does
    assert count(sink) == 1
    await b.close()


async def test_queue_limit_pushes_back(sink: ChdbSink) -> None:
    b = Batcher("t", Recorder(sink), BatchConfig(max_rows=10, max_delay_ms=10, max_pending_rows=3))
    b.start()
    with pytest.raises(ServiceUnavailable) as e:
        await b.submit(rows(1, 2, 3, 4))
    assert e.value.retry_after == 1
    await b.close()


async def test_close_flushes_what_is_waiting(sink: ChdbSink) -> None:
    b = Batcher("t", Recorder(sink), BatchConfig(max_rows=1000, max_delay_ms=60_000))
    b.start()
    waiter = asyncio.create_task(b.submit(rows(1, 2)))
    await asyncio.sleep(0.01)
    await b.close()
    await waiter
    assert count(sink) == 2
    with pytest.raises(ServiceUnavailable):
        await b.submit(rows(3))


async def test_hurry_flushes_without_waiting_for_the_delay(sink: ChdbSink) -> None:
    b = Batcher("t", Recorder(sink), BatchConfig(max_rows=1000, max_delay_ms=60_000))
    b.start()
    waiter = asyncio.create_task(b.submit(rows(1)))
    await asyncio.sleep(0.01)
    b.hurry()  # what SIGTERM does before waiting for in-flight requests
    await asyncio.wait_for(waiter, 5)
    await asyncio.wait_for(b.submit(rows(2)), 5)  # later requests do not wait either
    assert count(sink) == 2
    await b.close()


# --- failures of the background task: answered, counted, shown, recovered from ---------------


class Flaky:
    """The real insert, except while `error` is set: then it raises that (a full disk, a
    read-only scratch folder, an engine error, a bug)."""

    def __init__(self, sink: ChdbSink) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self.calls = 0
        self.probes = 0

    async def insert(self, table: str, body: bytes, token: str) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        self.sink.insert(table, body, token)

    async def probe(self, table: str) -> None:
        self.probes += 1
        if self.error is not None:
            raise self.error
        self.sink.probe(table)


ENOSPC = OSError(28, "No space left on device")


async def test_an_os_error_is_answered_503_and_the_task_survives_and_recovers(
    sink: ChdbSink,
) -> None:
    flaky = Flaky(sink)
    flaky.error = ENOSPC
    b = Batcher("t", flaky.insert, BatchConfig(max_rows=1, max_delay_ms=0, insert_retries=2))
    b.start()
    with pytest.raises(ServiceUnavailable) as e:
        await asyncio.wait_for(b.submit(rows(1)), 10)  # an answer, never a hang
    assert e.value.retry_after == 5 and e.value.detail == "storage is failing"
    assert flaky.calls == 3 and b.insert_errors == 3 and b.failed_batches == 1
    assert b.failing == "OSError ENOSPC"
    assert b._task is not None and not b._task.done()  # the task lives on
    with pytest.raises(ServiceUnavailable):  # while failing: one attempt, the answer at once
        await asyncio.wait_for(b.submit(rows(2)), 10)
    assert flaky.calls == 4
    flaky.error = None  # space came back
    await asyncio.wait_for(b.submit(rows(3)), 10)
    assert b.failing is None and count(sink) == 1
    await b.close()


@pytest.mark.parametrize(
    "error",
    [
        ENOSPC,
        OSError(30, "Read-only file system"),
        SinkError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB. (NOT_ENOUGH_SPACE)"),
        RuntimeError("anything at all"),
        MemoryError(),
    ],
)
async def test_every_waiting_request_of_a_failing_batch_gets_503(
    sink: ChdbSink, error: BaseException
) -> None:
    flaky = Flaky(sink)
    flaky.error = error
    b = Batcher("t", flaky.insert, BatchConfig(max_rows=100, max_delay_ms=20, insert_retries=0))
    b.start()
    results = await asyncio.wait_for(
        asyncio.gather(*(b.submit(rows(i)) for i in range(10)), return_exceptions=True), 10
    )
    assert all(isinstance(r, ServiceUnavailable) for r in results)
    assert flaky.calls == 1 and b.failed_batches == 1 and b.queued_rows == 0
    flaky.error = None
    await asyncio.wait_for(b.submit(rows(99)), 10)
    assert count(sink) == 1
    await b.close()


async def test_an_idle_failing_batcher_probes_and_recovers_without_traffic(
    sink: ChdbSink,
) -> None:
    flaky = Flaky(sink)
    flaky.error = ENOSPC
    b = Batcher(
        "t", flaky.insert, BatchConfig(max_rows=1, max_delay_ms=0, insert_retries=0),
        flaky.probe, probe_first_s=0.01, probe_max_s=0.05,
    )  # fmt: skip
    b.start()
    with pytest.raises(ServiceUnavailable):
        await b.submit(rows(1))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if flaky.probes >= 2:
            break
    assert b.failing == "OSError ENOSPC" and flaky.probes >= 2  # probed, still failing
    flaky.error = None
    for _ in range(500):
        await asyncio.sleep(0.01)
        if b.failing is None:
            break
    assert b.failing is None  # a probe saw the storage work again: /readyz is ready
    assert count(sink) == 0  # the probe stores nothing
    await b.close()


async def test_a_failure_of_the_loop_itself_is_answered_and_the_loop_restarts(
    sink: ChdbSink,
) -> None:
    b = Batcher("t", Recorder(sink), BatchConfig(max_rows=1, max_delay_ms=0))
    b.start()
    with pytest.raises(ServiceUnavailable):  # a str among the rows: the loop's join raises
        await asyncio.wait_for(b.submit(["not bytes"]), 10)  # type: ignore[list-item]
    assert b.task_errors == 1 and b.failing == "TypeError"
    await asyncio.wait_for(b.submit(rows(1)), 10)  # restarted, and working
    assert count(sink) == 1 and b.failing is None
    await b.close()


async def test_close_while_an_insert_hangs_is_bounded_and_answers_503(sink: ChdbSink) -> None:
    never = asyncio.Event()

    async def hanging(table: str, body: bytes, token: str) -> None:
        await never.wait()

    b = Batcher("t", hanging, BatchConfig(max_rows=1, max_delay_ms=0))
    b.start()
    waiter = asyncio.create_task(b.submit(rows(1)))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(b.close(timeout_s=0.2), 5)  # returns, never raises
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(waiter, 5)


async def test_close_while_failing_answers_503_and_does_not_raise(sink: ChdbSink) -> None:
    flaky = Flaky(sink)
    flaky.error = ENOSPC
    b = Batcher("t", flaky.insert, BatchConfig(max_rows=1000, max_delay_ms=60_000))
    b.start()
    waiter = asyncio.create_task(b.submit(rows(1)))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(b.close(timeout_s=10), 10)
    with pytest.raises(ServiceUnavailable):
        await waiter


async def test_a_dead_task_answers_503_instead_of_hanging(sink: ChdbSink) -> None:
    b = Batcher("t", Recorder(sink), BatchConfig(max_rows=1000, max_delay_ms=60_000))
    b.start()
    waiter = asyncio.create_task(b.submit(rows(1)))
    await asyncio.sleep(0.01)
    assert b._task is not None
    b._task.cancel()  # killed from outside (it never dies by itself)
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(waiter, 5)
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(b.submit(rows(2)), 5)
    await b.close()


OUTCOMES = st.sampled_from([None, None, ENOSPC, SinkError("Code: 1. x"), ValueError()])


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(outcomes=st.lists(OUTCOMES, min_size=1, max_size=12))
def test_any_sequence_of_failures_answers_every_request_and_stores_only_the_accepted(
    sink: ChdbSink, outcomes: list[BaseException | None]
) -> None:
    """Whatever fails when, each request gets 202-or-503 promptly, and what is stored is
    exactly the rows of the requests that were answered OK."""
    sink.execute("TRUNCATE TABLE t")

    async def scenario() -> None:
        flaky = Flaky(sink)
        b = Batcher("t", flaky.insert, BatchConfig(max_rows=1, max_delay_ms=0, insert_retries=1))
        b.start()
        accepted = 0
        for i, error in enumerate(outcomes):
            flaky.error = error
            try:
                await asyncio.wait_for(b.submit(rows(i)), 10)
                accepted += 1
            except ServiceUnavailable:
                assert error is not None
            assert (b.failing is None) == (error is None)
        await asyncio.wait_for(b.close(timeout_s=5), 10)
        assert count(sink) == accepted == outcomes.count(None)

    asyncio.run(scenario())


def test_insert_files_left_by_a_crash_are_removed_on_open(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    left = tmp_path / "tmp" / "0123abcd.ndjson"
    left.write_bytes(b'{"n": 1}\n' * 1000)
    ChdbSink(tmp_path / "chdb", "batcher_test", tmp_path / "tmp").close()
    assert not left.exists()


def test_a_failed_write_leaves_no_insert_file(sink: ChdbSink, tmp_path: Path) -> None:
    with pytest.raises(SinkError):  # an engine error after the file was written
        sink.insert("no_such_table", b'{"n": 1}', "tok1")
    assert list((tmp_path / "tmp").iterdir()) == []
    sink.probe("t")  # the probe leaves nothing behind either
    assert list((tmp_path / "tmp").iterdir()) == [] and count(sink) == 0
