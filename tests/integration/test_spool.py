"""The spool and the shipper in the real app, on the real embedded engine. Outages are made by a
wrapper around the real chDB sink that refuses inserts (as an unreachable server would), or
stores one and then fails (an answer lost after the insert landed)."""

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.appkeys import CONFIG, DB, PIPELINE, SHIPPER, SINK, SPOOL
from collector.config import SpoolConfig
from collector.errors import SinkUnavailable
from collector.sink import Sink
from tests.conftest import PRIVACY_KEY, AppFactory, auth, query
from tests.integration.test_openapi import check


class Outage:
    """The real sink; inserts raise while `down`, or land and then raise (`lose_answers`)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.down = False
        self.lose_answers = 0
        self.attempts = 0

    def insert(self, table: str, rows: bytes, token: str) -> None:
        self.attempts += 1
        if self.down:
            raise SinkUnavailable("engine unreachable (test)")
        self.sink.insert(table, rows, token)
        if self.lose_answers:
            self.lose_answers -= 1
            raise SinkUnavailable("connection reset after the insert (test)")

    def insert_file(self, table: str, path: Path, token: str) -> None:
        self.insert(table, path.read_bytes(), token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)


def spool_config(**kw: Any) -> SpoolConfig:
    defaults: dict[str, Any] = {
        "segment_age_ms": 50, "retry_max_s": 1, "drain_timeout_s": 5, "subject_drain_timeout_s": 3
    }  # fmt: skip
    return SpoolConfig(**{**defaults, **kw})


async def with_outage(start: AppFactory, **kw: Any) -> tuple[Any, Outage]:
    client = await start(spool=spool_config(**kw))
    outage = Outage(client.app[SINK])
    client.app[DB].sink = outage
    return client, outage


def count(client: Any, where: str = "1") -> int:
    return int(query(client, f"SELECT count() AS n FROM access_log WHERE {where}")[0]["n"])


async def drained(client: Any, within_s: float = 60) -> float:
    t0 = time.monotonic()
    while client.app[SPOOL].total_bytes:
        assert time.monotonic() - t0 < within_s, "spool did not drain"
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


def batch(tag: str, n: int, user: str = "u") -> list[dict[str, Any]]:
    return [{"ip": "192.0.2.1", "user_id": user, "path": f"/{tag}/{i}"} for i in range(n)]


async def test_an_outage_is_spooled_up_to_the_high_water_mark_then_503_then_drained(
    start: AppFactory,
) -> None:
    client, outage = await with_outage(start, max_bytes=512 * 1024)
    outage.down = True
    accepted, statuses = 0, []
    for i in range(200):
        r = await client.post("/v1/logs", json=batch(f"b{i}", 50), headers=auth())
        statuses.append(r.status)
        if r.status == 503:
            assert r.headers["Retry-After"]
            assert await check(r, "/v1/logs") == {
                "error": "service unavailable", "detail": "spool is full"
            }  # fmt: skip
            break
        assert r.status == 202
        accepted += (await r.json())["accepted"]
    assert statuses[-1] == 503 and accepted >= 600  # acknowledged into the spool, then refused
    ready = await client.get("/readyz")
    body = await check(ready, "/readyz", "get")
    assert ready.status == 503 and body["status"] == "busy" and body["queued_rows"] == accepted
    assert body["shipping"] and "access_log" in body["shipping"][0]
    assert count(client) == 0 and outage.attempts > 0
    metrics = await (await client.get("/metrics")).text()
    assert 'collector_ship_failing{table="access_log"} 1.0' in metrics

    outage.down = False  # back: the backlog drains, every acknowledged row exactly once
    drain_s = await drained(client)
    assert count(client) == accepted
    assert count(client, "path LIKE '/b0/%'") == 50
    ready = await client.get("/readyz")
    body = await check(ready, "/readyz", "get")
    assert ready.status == 200 and body == {
        "status": "ready", "queued_rows": 0, "spool_bytes": 0, "shipping": []
    }  # fmt: skip
    metrics = await (await client.get("/metrics")).text()
    assert 'collector_ship_failing{table="access_log"} 0.0' in metrics
    retries = [ln for ln in metrics.splitlines() if ln.startswith("collector_ship_retries_total")]
    assert any('table="access_log"' in ln and float(ln.split()[-1]) > 0 for ln in retries)
    print(f"\noutage: {accepted} records spooled, drained in {drain_s:.2f} s")


async def test_a_retry_after_a_lost_answer_is_deduplicated(start: AppFactory) -> None:
    client, outage = await with_outage(start)
    outage.lose_answers = 2  # the first two inserts land, their answers are lost
    for i in range(3):
        r = await client.post("/v1/logs", json=batch(f"d{i}", 20), headers=auth())
        assert r.status == 202
    await drained(client)
    segments = client.app[SHIPPER].stats["access_log"].shipped_segments
    assert outage.lose_answers == 0 and outage.attempts == segments + 2  # landed twice, retried
    assert count(client) == 60
    rollup = query(client, "SELECT sum(requests) AS n FROM access_daily")
    assert rollup == [{"n": 60}]  # the rollup dropped the retries too


async def test_leftover_segments_are_shipped_by_the_next_start(
    start: AppFactory, data_dir: Path
) -> None:
    client, outage = await with_outage(start, drain_timeout_s=0)
    outage.down = True
    for i in range(4):
        assert (
            await client.post("/v1/logs", json=batch(f"l{i}", 25), headers=auth())
        ).status == 202
    await client.close()  # stops with the rows still in the spool
    assert list((data_dir / "spool" / "access_log").glob("*.seg"))
    client = await start(spool=spool_config())
    await drained(client)
    assert count(client) == 100
    assert not list((data_dir / "spool" / "access_log").glob("*.seg"))


async def test_subject_deletion_reaches_rows_still_in_the_spool(start: AppFactory) -> None:
    # segments would wait a minute before shipping: the deletion must not miss them
    client, outage = await with_outage(start, segment_age_ms=60_000)
    await client.post("/v1/logs", json=batch("s", 5, user="subject-1"), headers=auth())
    await client.post("/v1/logs", json=batch("o", 5, user="someone-else"), headers=auth())
    assert count(client) == 0 and client.app[SPOOL].total_bytes > 0

    outage.down = True  # cannot be shipped now: refused, nothing deleted, nothing lost
    t0 = time.monotonic()
    r = await client.post(
        "/v1/subjects/delete", json={"user_id": "subject-1"}, headers=auth(PRIVACY_KEY)
    )
    assert r.status == 503 and r.headers["Retry-After"]
    assert 3 <= time.monotonic() - t0 < 30  # waited subject_drain_timeout_s, no longer
    outage.down = False

    r = await client.post(
        "/v1/subjects/export", json={"user_id": "subject-1"}, headers=auth(PRIVACY_KEY)
    )
    assert r.status == 200 and (await r.json())["rows"] == 5  # the waiting rows are found
    await client.post("/v1/logs", json=batch("s2", 3, user="subject-1"), headers=auth())
    r = await client.post(
        "/v1/subjects/delete", json={"user_id": "subject-1"}, headers=auth(PRIVACY_KEY)
    )
    body = await r.json()
    assert r.status == 200 and body["verified"] and body["deleted"]["access_log"] == 8
    await drained(client)
    assert count(client) == 5  # someone else's rows only
    assert count(client, "path LIKE '/s%'") == 0


async def test_idempotency_key_answers_come_back_from_the_spool_after_a_crash(
    start: AppFactory, data_dir: Path
) -> None:
    """The rows of a keyed request are in the spool but its key never reached the key store (a
    crash between the two): the next start learns the key from the spool, and the retry is
    answered, not stored again."""
    client, outage = await with_outage(start, drain_timeout_s=0)
    outage.down = True
    headers = auth(**{"Idempotency-Key": "req-1"})
    r = await client.post("/v1/logs", json=batch("k", 7), headers=headers)
    assert r.status == 202
    first = await r.json()
    await client.close()
    (data_dir / "idempotency.jsonl").write_bytes(b"")  # as if the key had not been written
    client = await start(spool=spool_config())
    r = await client.post("/v1/logs", json=batch("k", 7), headers=headers)
    assert r.status == 202 and await r.json() == first
    await drained(client)
    assert count(client) == 7
    assert client.app[SHIPPER].stats["access_log"].shipped_rows == 7


async def test_key_shredding_reaches_rows_still_in_the_spool(start: AppFactory) -> None:
    """Spooled rows hold pseudonyms only, never keys: once their epoch's key is shredded they
    are as unlinkable as the stored ones, whether shipped before or after the shred."""
    client, _ = await with_outage(start, segment_age_ms=60_000)
    await client.post("/v1/logs", json=batch("k", 4, user="subject-77"), headers=auth())
    assert client.app[SPOOL].total_bytes > 0  # still waiting, anonymized
    spooled = b"".join(p.read_bytes() for p in spool_files(client))
    assert spooled and b"subject-77" not in spooled and b"192.0.2.1" not in spooled
    keys = client.app[PIPELINE].keys
    old = keys.key_files("acme")[0].epoch
    keys.rotate("acme")
    keys.shred("acme", datetime(2999, 1, 1, tzinfo=UTC), current_epoch=old + ".g1")
    r = await client.post(
        "/v1/subjects/export", json={"user_id": "subject-77"}, headers=auth(PRIVACY_KEY)
    )
    body = await r.json()
    assert r.status == 200 and body["rows"] == 0 and old not in body["epochs_searched"]
    assert client.app[SPOOL].total_bytes == 0 and count(client) == 4  # shipped, unlinkable


def spool_files(client: Any) -> list[Path]:
    return list((client.app[CONFIG].storage.path / "spool").glob("*/*.*"))  # .open and .seg


async def test_a_damaged_or_vanished_segment_does_not_block_its_table(start: AppFactory) -> None:
    """Bit rot inside a sealed segment: its intact records before the damage are shipped and
    the damage is logged; a segment removed by hand is skipped. Later segments still ship."""
    client, outage = await with_outage(start, segment_age_ms=60_000)  # sealed here, by hand
    outage.down = True
    for tag in ("one", "two", "three", "four"):
        for _ in range(2):  # two records in each segment
            await client.post("/v1/logs", json=batch(tag, 3), headers=auth())
        await client.app[SPOOL].seal_open()
    segments = list(client.app[SPOOL].sealed["access_log"])
    assert len(segments) == 4
    damage(segments[0].path, at=segments[0].size - 10)  # in its second record
    segments[1].path.unlink()
    outage.down = False
    await drained(client)
    assert count(client, "path LIKE '/one/%'") == 3  # the record before the damage
    assert count(client, "path LIKE '/two/%'") == 0
    assert count(client, "path LIKE '/three/%' OR path LIKE '/four/%'") == 12


def damage(path: Path, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))
