"""The batcher against the real embedded engine; failures are injected around the real insert."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

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
