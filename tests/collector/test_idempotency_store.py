"""The Idempotency-Key store's bounds, on the real file: compact answers, per-tenant caps with
the oldest key forgotten first, compaction while running, and the route as part of the key."""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

import orjson
import pytest

from collector.errors import UnprocessableEntity
from collector.idempotency import MAX_STORED_ANSWER, Answer, IdempotencyStore, pack_answer

JSON = "application/json"


def many_errors(n: int = 100) -> Answer:
    """The largest answer an ingest request gives: 100 distinct record errors."""
    errors = [
        {"index": i, "field": f"field_{i % 37}", "error": f"not valid ({i * 7919 % 10007})"}
        for i in range(n)
    ]
    body = {"accepted": 5, "rejected": 1000, "errors": errors, "errors_truncated": True}
    return Answer(202, JSON, orjson.dumps(body))


def small() -> Answer:
    return Answer(202, JSON, b'{"accepted":3,"rejected":0,"errors":[]}')


async def put(store: IdempotencyStore, tenant: str, key: str, answer: Answer) -> Answer:
    async def compute() -> Answer:
        return answer

    return await store.run(tenant, "/v1/logs", key, b"body", compute)


def test_a_large_answer_is_stored_compact_with_its_counts() -> None:
    answer = many_errors()
    assert len(answer.body) > 5000
    packed = pack_answer(answer)
    assert len(packed) <= MAX_STORED_ANSWER
    kept = orjson.loads(zlib.decompress(packed))
    full = orjson.loads(answer.body)
    assert (kept["accepted"], kept["rejected"], kept["errors_truncated"]) == (5, 1000, True)
    assert kept["errors"] and kept["errors"] == full["errors"][: len(kept["errors"])]
    assert zlib.decompress(pack_answer(small())) == small().body  # small ones: as they were


async def test_bytes_per_key_in_the_file(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "idem.jsonl")
    for i in range(50):
        await put(store, "acme", f"small-{i}", small())
    per_small = store.file_bytes / 50
    for i in range(50):
        await put(store, "acme", f"large-{i}", many_errors())
    per_large = (store.file_bytes - 50 * per_small) / 50
    store.close()
    assert per_small < 300, per_small  # was ~7.5 KB for the large answer, base64 and all
    assert per_large < MAX_STORED_ANSWER * 4 / 3 + 300, per_large


async def test_replay_of_a_compacted_answer_keeps_counts(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "idem.jsonl")
    first = await put(store, "acme", "k", many_errors())
    assert first == many_errors()  # the live answer is whole
    replay = orjson.loads((await put(store, "acme", "k", small())).body)
    assert (replay["accepted"], replay["rejected"], replay["errors_truncated"]) == (5, 1000, True)
    store.close()


async def test_per_tenant_key_cap_forgets_the_oldest_first(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "idem.jsonl", max_keys_per_tenant=3)
    for i in range(5):
        await put(store, "acme", f"k{i}", small())
    await put(store, "globex", "k0", small())
    assert (store.keys("acme"), store.keys("globex"), store.evicted) == (3, 1, 2)
    calls = 0

    async def counted() -> Answer:
        nonlocal calls
        calls += 1
        return small()

    await store.run("acme", "/v1/logs", "k4", b"body", counted)  # newest: replayed
    await store.run("globex", "/v1/logs", "k0", b"body", counted)  # another tenant: kept
    assert calls == 0
    await store.run("acme", "/v1/logs", "k0", b"body", counted)  # forgotten: run again
    assert calls == 1
    store.close()
    reopened = IdempotencyStore(tmp_path / "idem.jsonl", max_keys_per_tenant=3)
    assert reopened.keys("acme") == 3
    reopened.close()


async def test_per_tenant_byte_cap(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "idem.jsonl", max_bytes_per_tenant=8192)
    for i in range(200):
        await put(store, "acme", f"k{i}", many_errors())
    assert store.live_bytes <= 8192 and store.keys("acme") >= 4
    assert store.evicted == 200 - store.keys("acme")
    store.close()


async def test_the_file_is_compacted_while_running(tmp_path: Path) -> None:
    path = tmp_path / "idem.jsonl"
    store = IdempotencyStore(path, max_keys_per_tenant=20, compact_min_bytes=8192)
    largest = 0
    for i in range(600):
        await put(store, "acme", f"key-{i}", small())
        largest = max(largest, path.stat().st_size)
        if i % 20 == 0:
            await asyncio.sleep(0.01)  # let a compaction finish
    if store._compacting is not None:
        await store._compacting
    assert store.compactions >= 5
    # without compaction: 600 lines (~150 KB); with it, the trigger (8 KiB) plus what came
    # in while a rewrite ran on its thread
    assert largest < 4 * 8192, largest
    store.close()
    reopened = IdempotencyStore(path, max_keys_per_tenant=20)
    assert reopened.keys("acme") == 20
    calls = 0

    async def counted() -> Answer:
        nonlocal calls
        calls += 1
        return small()

    await reopened.run("acme", "/v1/logs", "key-599", b"body", counted)
    assert calls == 0  # the newest key survived compaction and restart
    reopened.close()


async def test_the_route_is_part_of_the_key(tmp_path: Path) -> None:
    store = IdempotencyStore(tmp_path / "idem.jsonl")
    await put(store, "acme", "k", small())

    async def compute() -> Answer:
        raise AssertionError("must not run")

    with pytest.raises(UnprocessableEntity) as e:
        await store.run("acme", "/v1/events", "k", b"body", compute)
    assert e.value.detail == "Idempotency-Key was used on another route"
    store.close()
