"""The spool's segment format, recovery and group commit, on real files."""

import asyncio
import zlib
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import SpoolConfig
from collector.errors import ServiceUnavailable
from collector.spool import (
    FRAME,
    Record,
    Segment,
    Spool,
    encode_record,
    read_records,
    read_segment,
)

row = st.dictionaries(
    st.sampled_from("abcdef"), st.integers(-(2**40), 2**40) | st.text(max_size=20)
).map(orjson.dumps)
records_st = st.lists(
    st.tuples(st.lists(row, min_size=1, max_size=5), st.binary(max_size=40)), max_size=8
)


def expected(records: list[tuple[list[bytes], bytes]]) -> list[Record]:
    return [Record(note, b"\n".join(rows)) for rows, note in records]


@given(records_st, st.data())
@settings(max_examples=300, deadline=None)
def test_any_truncation_yields_exactly_the_complete_records_before_it(
    records: list[tuple[list[bytes], bytes]], data: st.DataObject
) -> None:
    frames = [encode_record(rows, note) for rows, note in records]
    blob = b"".join(frames)
    cut = data.draw(st.integers(0, len(blob)))
    got, good = read_records(blob[:cut])
    ends = [sum(len(f) for f in frames[: i + 1]) for i in range(len(frames))]
    complete = sum(1 for e in ends if e <= cut)
    assert got == expected(records)[:complete]
    assert good == (ends[complete - 1] if complete else 0)


@given(records_st.filter(bool), st.data())
@settings(max_examples=200, deadline=None)
def test_a_damaged_byte_ends_the_segment_before_its_record(
    records: list[tuple[list[bytes], bytes]], data: st.DataObject
) -> None:
    """A tail overwritten with garbage (not only cut) fails the CRC: never read as rows."""
    frames = [encode_record(rows, note) for rows, note in records]
    blob = bytearray(b"".join(frames))
    at = data.draw(st.integers(0, len(blob) - 1))
    blob[at] ^= data.draw(st.integers(1, 255))
    got, good = read_records(bytes(blob))
    starts = [sum(len(f) for f in frames[:i]) for i in range(len(frames))]
    hit = max(i for i, s in enumerate(starts) if s <= at)
    assert got == expected(records)[:hit]
    assert good == starts[hit]


def test_a_huge_length_is_damage_not_an_allocation() -> None:
    blob = encode_record([b'{"a":1}']) + FRAME.pack(2**31, zlib.crc32(b"")) + b"xx"
    got, good = read_records(blob)
    assert got == [Record(b"", b'{"a":1}')] and good == len(encode_record([b'{"a":1}']))


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.glob("*/*.seg"))


def config(**kw: int) -> SpoolConfig:
    return SpoolConfig(**{"segment_age_ms": 60_000, "commit_window_ms": 1, **kw})  # type: ignore[arg-type]


def test_recover_cuts_a_torn_tail_and_queues_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    whole = [encode_record([b'{"n":%d}' % i], b"note%d" % i) for i in range(3)]
    torn = encode_record([b'{"n":99}'], b"lost")[:-3]
    seg = folder / "000000000007-abcd0123.seg"
    seg.write_bytes(b"".join(whole) + torn)
    (folder / "000000000008-abcd0123.seg").write_bytes(torn)  # nothing whole: removed
    spool = Spool(tmp_path, ["t"], config())
    notes = spool.recover()
    assert notes == [b"note0", b"note1", b"note2"]
    assert seg.stat().st_size == sum(map(len, whole))  # the tail is cut on disk
    assert not (folder / "000000000008-abcd0123.seg").exists()
    assert [s.path for s in spool.sealed["t"]] == [seg]
    assert spool.torn_tails_cut == 2 and spool.total_bytes == seg.stat().st_size
    assert [r.rows for r in read_segment(spool.sealed["t"][0])[0]] == [
        b'{"n":0}', b'{"n":1}', b'{"n":2}'
    ]  # fmt: skip


async def test_group_commit_makes_concurrent_requests_durable_together(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ["a", "b"], config(commit_window_ms=5))
    spool.recover()
    spool.start()
    tickets = await asyncio.gather(
        *(
            spool.submit({"a": [b'{"i":%d}' % i], "b": [b'{"j":%d}' % i] * (i % 2)})
            for i in range(50)
        )
    )
    assert spool.committed_requests == 50
    assert spool.commits < 50 and spool.largest_group > 1  # fsyncs shared by requests
    await spool.close()  # seals the open segments
    for t in tickets:
        t.release()
    a = [r for seg in spool.sealed["a"] for r in read_segment(seg)[0]]
    b = [r for seg in spool.sealed["b"] for r in read_segment(seg)[0]]
    assert sorted(bytes(r.rows) for r in a) == sorted(b'{"i":%d}' % i for i in range(50))
    assert len(b) == 25
    assert disk_bytes(tmp_path) == spool.total_bytes


async def test_segments_rotate_by_size_and_age(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ["a"], config(segment_bytes=4096, segment_age_ms=200))
    spool.recover()
    spool.start()
    for _ in range(5):
        (await spool.submit({"a": [b"x" * 3000]})).release()
    assert len(spool.sealed["a"]) >= 2  # by size
    before = len(spool.sealed["a"])
    (await spool.submit({"a": [b"y"]})).release()
    await asyncio.sleep(0.5)
    assert len(spool.sealed["a"]) == before + 1  # by age, with no further traffic
    assert spool.ready_events["a"].is_set()
    await spool.close()


async def test_above_the_high_water_mark_requests_get_503(tmp_path: Path) -> None:
    spool = Spool(tmp_path, ["a"], config(max_bytes=64 * 1024))
    spool.recover()
    spool.start()
    accepted = 0
    with pytest.raises(ServiceUnavailable) as e:
        while True:
            (await spool.submit({"a": [b"z" * 10_000]})).release()
            accepted += 1
    assert e.value.detail == "spool is full" and e.value.retry_after
    assert accepted == 7 and spool.health()
    await spool.close()


async def test_a_failed_write_answers_503_and_keeps_nothing_of_the_group(tmp_path: Path) -> None:
    """The spool folder made unwritable (a file where a table's folder should be): the group
    is refused, nothing of it is on disk, and writes work again once the cause is gone."""
    spool = Spool(tmp_path, ["a"], config())
    spool.recover()
    spool.start()
    (await spool.submit({"a": [b'{"ok":1}']})).release()
    await spool.seal_open()
    seg_dir = tmp_path / "a"
    moved = tmp_path / "a.moved"
    seg_dir.rename(moved)
    seg_dir.write_bytes(b"")  # a file: the new segment cannot be created
    with pytest.raises(ServiceUnavailable, match="spool is failing"):
        await spool.submit({"a": [b'{"lost":1}']})
    assert spool.failing is not None and spool.health()
    seg_dir.unlink()
    moved.rename(seg_dir)
    (await spool.submit({"a": [b'{"ok":2}']})).release()
    assert spool.failing is None
    await spool.close()
    rows = [bytes(r.rows) for seg in spool.sealed["a"] for r in read_segment(seg)[0]]
    assert rows == [b'{"ok":1}', b'{"ok":2}']


class Flaky(Spool):
    """A spool whose commit loop hits an unexpected error once (a bug, not a disk error)."""

    fail = 1

    def _seal_due(self, everything: bool = False) -> None:
        if self.fail and self._waiting:
            self.fail -= 1
            raise RuntimeError("unexpected")
        super()._seal_due(everything)


async def test_an_unexpected_error_in_the_commit_loop_answers_503_and_restarts_it(
    tmp_path: Path,
) -> None:
    spool = Flaky(tmp_path, ["a"], config())
    spool.recover()
    spool.start()
    with pytest.raises(ServiceUnavailable, match="spool is failing"):
        await asyncio.wait_for(spool.submit({"a": [b'{"n":1}']}), 10)  # answered, never hangs
    (await asyncio.wait_for(spool.submit({"a": [b'{"n":2}']}), 10)).release()
    assert spool.commit_errors == 1 and spool.committed_requests == 1
    await spool.close()
    assert [r.rows for seg in spool.sealed["a"] for r in read_segment(seg)[0]] == [b'{"n":2}']


# ---- the shipper's insert body, streamed from a segment


def _segment(tmp_path: Path, blob: bytes, table: str = "t") -> Segment:
    path = tmp_path / f"{table}-0001-abcd.seg"
    path.write_bytes(blob)
    return Segment(table, 1, path, 0.0, len(blob), sealed=True)


@given(records_st, st.data())
@settings(max_examples=200, deadline=None)
def test_the_streamed_body_and_token_are_those_of_the_whole_segment_joined(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[tuple[list[bytes], bytes]],
    data: st.DataObject,
) -> None:
    """Record by record, the insert body is the intact records' rows joined by newlines, and
    the deduplication token hashes the same bytes as when the segment was read whole (a
    segment left by an older version keeps its token: its retry is still deduplicated)."""
    import hashlib

    from collector.shipper import _prepare_bytes, _prepare_file, segment_token

    tmp = tmp_path_factory.mktemp("prep")
    blob = b"".join(encode_record(rows, note) for rows, note in records)
    cut = data.draw(st.integers(0, len(blob)))
    seg = _segment(tmp, blob[:cut])
    got = _prepare_file(seg, tmp / "scratch" / "body.ndjson")  # the folder is made if missing
    in_memory, same_body = _prepare_bytes(seg)
    whole, good = read_records(blob[:cut])
    body = b"\n".join(bytes(r.rows) for r in whole if r.rows)
    assert (tmp / "scratch" / "body.ndjson").read_bytes() == body == same_body
    assert in_memory == got
    assert got.token == segment_token(seg, hashlib.blake2b(body, digest_size=12).hexdigest())
    assert got.records == len(whole) and got.intact == (good == cut)
    assert got.rows == (body.count(b"\n") + 1 if body else 0)


def test_a_segment_is_never_held_in_memory_whole(tmp_path: Path) -> None:
    """A 24 MiB segment of 240 requests becomes the embedded engine's insert file with at most
    about one request's rows in memory at a time (Python's allocations, traced)."""
    import tracemalloc

    from collector.shipper import _prepare_file

    request = [orjson.dumps({"path": "/" + "x" * 1000, "i": i}) for i in range(100)]
    blob = b"".join(encode_record(request) for _ in range(240))
    assert len(blob) > 24_000_000
    seg = _segment(tmp_path, blob)
    tracemalloc.start()
    try:
        got = _prepare_file(seg, tmp_path / "body.ndjson")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.rows == 24_000 and got.intact
    assert peak < 2 * len(encode_record(request)) + 256 * 1024, peak
