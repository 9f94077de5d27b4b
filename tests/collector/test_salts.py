import asyncio
import errno
import os
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.salts import GRACE_MS, OVERDUE_SLACK_MS, TOMBSTONES, SaltStore, sweep_forever

DAY = 86_400_000
NOON = 20_000 * DAY + DAY // 2  # 2024-10-04 12:00 UTC


def test_today_is_created_private_and_stable(tmp_path: Path) -> None:
    store = SaltStore(tmp_path / "salts")
    salts = store.salts(NOON)
    assert list(salts) == [20_000]
    path = tmp_path / "salts" / "2024-10-04.salt"
    assert path.read_bytes() == salts[20_000] and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SaltStore(tmp_path / "salts").salts(NOON + 1000) == salts


def test_yesterday_only_within_the_grace_hour_and_never_recreated(tmp_path: Path) -> None:
    store = SaltStore(tmp_path)
    yesterday = store.salts(NOON)[20_000]
    early_next_day = 20_001 * DAY + GRACE_MS - 1
    assert store.salts(early_next_day)[20_000] == yesterday
    assert 20_000 not in store.salts(20_001 * DAY + GRACE_MS)
    assert store.sweep(20_001 * DAY + GRACE_MS) == ["2024-10-04"]
    assert 20_000 not in store.salts(early_next_day)  # a destroyed day's salt is never made again


HOUR = 3_600_000


def test_a_late_window_keeps_past_salts_for_late_records(tmp_path: Path) -> None:
    """Within `late_window_hours` a past day's salt is used (made on first use if it was never
    made); after it the salt is destroyed, tombstoned, and never made again."""
    store = SaltStore(tmp_path, keep_ms=lambda: 48 * HOUR)
    two_days_on = 20_002 * DAY + 12 * HOUR  # 36 h after 2024-10-04 ended
    salt = store.salts(two_days_on, 48 * HOUR)[20_000]
    assert (tmp_path / "2024-10-04.salt").read_bytes() == salt
    assert 20_000 not in store.salts(two_days_on, 24 * HOUR)  # a tenant with a shorter window
    assert 19_999 not in store.salts(two_days_on, 48 * HOUR)  # 60 h after its day
    assert store.sweep(two_days_on) == []
    assert store.sweep(20_003 * DAY) == ["2024-10-04"]  # 48 h after the day
    assert 20_000 not in store.salts(20_002 * DAY, 48 * HOUR)  # even with a clock gone back
    assert 20_000 not in SaltStore(tmp_path, keep_ms=lambda: 48 * HOUR).salts(
        20_002 * DAY, 48 * HOUR
    )
    assert not (tmp_path / "2024-10-04.salt").exists()


def test_a_window_longer_than_the_store_keeps_is_cut_to_it(tmp_path: Path) -> None:
    store = SaltStore(tmp_path)  # keeps the grace hour only
    assert 20_000 not in store.salts(20_001 * DAY + 2 * HOUR, 48 * HOUR)


def test_sweep_destroys_after_day_plus_grace(tmp_path: Path) -> None:
    store = SaltStore(tmp_path)
    store.salts(NOON)
    assert store.sweep(20_001 * DAY + GRACE_MS - 1) == []
    assert store.sweep(20_001 * DAY + GRACE_MS) == ["2024-10-04"]
    assert not (tmp_path / "2024-10-04.salt").exists()
    assert 20_000 not in store.salts(20_001 * DAY + 1)  # gone from memory too


# --- the sweep survives file-system errors; destroyed days stay destroyed --------------------


def emfile(*args: object, **kwargs: object) -> NoReturn:
    raise OSError(errno.EMFILE, "Too many open files")


def test_a_listing_error_is_counted_shown_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SaltStore(tmp_path)
    store.salts(NOON)
    due = 20_001 * DAY + GRACE_MS
    with monkeypatch.context() as m:
        m.setattr(os, "listdir", emfile)
        assert store.sweep(due) == []  # no exception: the sweeper lives on
    assert store.sweep_errors == 1 and store.sweep_failing == "listing: OSError EMFILE"
    assert store.health(due) == ["salt sweep failing: listing: OSError EMFILE"]
    late = due + OVERDUE_SLACK_MS
    assert store.overdue(late) == ["2024-10-04"]  # known on disk, past its time
    assert "visitor salt destruction overdue: 2024-10-04" in store.health(late)
    assert store.sweep(late) == ["2024-10-04"]  # the retry destroys it
    assert store.health(late) == [] and store.overdue(late) == []
    assert store.destroyed_total == 1


def test_one_salt_that_cannot_be_removed_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SaltStore(tmp_path)
    for day in (20_000, 20_001, 20_002):
        store.salts(day * DAY + DAY // 2)
    stuck = str(tmp_path / "2024-10-04.salt")
    real_unlink = os.unlink

    def unlink(path: object, *args: object, **kwargs: object) -> None:
        if str(path) == stuck:
            emfile()
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    now = 20_003 * DAY + GRACE_MS
    with monkeypatch.context() as m:
        m.setattr(os, "unlink", unlink)
        assert store.sweep(now) == ["2024-10-05", "2024-10-06"]
    assert (tmp_path / "2024-10-04.salt").exists()
    assert store.sweep_failing == "2024-10-04: OSError EMFILE" and store.sweep_errors == 1
    # tombstoned with the rest: overdue at once, never used again even while still on disk
    assert store.overdue(now) == ["2024-10-04"]
    assert 20_000 not in store.salts(20_000 * DAY + DAY // 2)
    assert store.sweep(now) == ["2024-10-04"] and store.health(now) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [TOMBSTONES]


def test_a_tombstone_that_cannot_be_written_does_not_keep_the_salt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SaltStore(tmp_path)
    store.salts(NOON)
    now = 20_001 * DAY + GRACE_MS
    (tmp_path / TOMBSTONES).mkdir()  # the tombstone cannot be appended to
    assert store.sweep(now) == ["2024-10-04"]  # destruction comes first
    assert store.sweep_failing == "tombstone: IsADirectoryError EISDIR"
    assert 20_000 not in store.salts(NOON)  # refused in memory all the same
    (tmp_path / TOMBSTONES).rmdir()
    assert store.sweep(now) == [] and store.sweep_failing is None  # written on the retry
    assert (tmp_path / TOMBSTONES).read_text() == "2024-10-04\n"
    assert 20_000 not in SaltStore(tmp_path).salts(NOON)


def test_an_unreadable_tombstone_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / TOMBSTONES).mkdir()
    with pytest.raises(IsADirectoryError):  # fail closed: a destroyed day could come back
        SaltStore(tmp_path)


def test_a_clock_jumping_back_never_brings_a_second_salt_for_a_destroyed_day(
    tmp_path: Path,
) -> None:
    store = SaltStore(tmp_path)
    first = store.salts(NOON)[20_000]
    assert store.sweep(20_001 * DAY + GRACE_MS) == ["2024-10-04"]
    assert store.salts(NOON) == {}  # the clock went back a day: no salt, none made
    assert not (tmp_path / "2024-10-04.salt").exists()
    assert SaltStore(tmp_path).salts(NOON) == {}  # nor after a restart (the tombstone)
    assert SaltStore(tmp_path).salts(NOON - 30 * DAY) == {}  # nor for any earlier day
    later = SaltStore(tmp_path).salts(NOON + DAY)[20_001]  # the next day is a new day
    assert later != first


def test_a_clock_jumping_forward_then_back(tmp_path: Path) -> None:
    store = SaltStore(tmp_path)
    today = store.salts(NOON)[20_000]
    ahead = 20_005 * DAY + DAY // 2  # the clock leaps five days ahead, the sweep runs
    store.salts(ahead)
    assert store.sweep(ahead) == ["2024-10-04"]
    assert store.salts(NOON) == {}  # back to the real day: its salt was destroyed for good
    tomorrow = store.salts(NOON + DAY)
    assert list(tomorrow) == [20_001] and today not in tomorrow.values()
    assert store.salts(ahead)[20_005]  # the day it leapt to keeps its (one) salt


def test_a_short_salt_file_is_never_used(tmp_path: Path) -> None:
    (tmp_path / "2024-10-04.salt").write_bytes(b"torn")  # a full disk under an older version
    (tmp_path / "2024-10-03.salt").write_bytes(b"")
    store = SaltStore(tmp_path)
    salts = store.salts(20_000 * DAY + 60_000)  # inside yesterday's grace hour
    assert list(salts) == [20_000] and len(salts[20_000]) == 32
    assert (tmp_path / "2024-10-04.salt").read_bytes() == salts[20_000]


def test_a_salt_left_half_written_is_destroyed_with_its_day(tmp_path: Path) -> None:
    (tmp_path / "2024-10-04.salt.tmp-0a1b2c3d").write_bytes(b"x" * 32)
    store = SaltStore(tmp_path)
    assert store.sweep(20_001 * DAY + GRACE_MS) == []
    assert not (tmp_path / "2024-10-04.salt.tmp-0a1b2c3d").exists()


async def test_the_sweeper_survives_a_sweep_that_raises(tmp_path: Path) -> None:
    store = SaltStore(tmp_path)
    store.salts(NOON)
    now = [20_001 * DAY + GRACE_MS]
    real = store.sweep
    raised = []

    def sweep(now_ms: int) -> list[str]:
        if not raised:
            raised.append(1)
            raise RuntimeError("a bug")
        return real(now_ms)

    store.sweep = sweep  # type: ignore[method-assign]
    task = asyncio.create_task(sweep_forever(store, interval_s=0.01, clock=lambda: now[0]))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if store.destroyed_total:
            break
    assert not task.done() and store.destroyed_total == 1 and store.sweep_errors == 1
    assert store.sweep_failing is None and store.health(now[0]) == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


CLOCK = st.integers(min_value=19_995 * DAY, max_value=20_010 * DAY)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["use", "sweep", "restart"]), CLOCK), min_size=1, max_size=25
    )
)
def test_whatever_the_clock_does_a_day_has_at_most_one_salt_ever(
    steps: list[tuple[str, int]],
) -> None:
    """Clock jumps both ways, sweeps and restarts in any order: every day sees one salt value at
    most, a day never gets a salt after its salt was destroyed, and a sweep leaves nothing due."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        store = SaltStore(root)
        seen: dict[int, bytes] = {}
        destroyed: set[int] = set()
        for action, now in steps:
            if action == "use":
                for day, salt in store.salts(now).items():
                    assert day not in destroyed
                    assert seen.setdefault(day, salt) == salt
            elif action == "sweep":
                destroyed |= {seen_day(name) for name in store.sweep(now)}
                left = [p for p in root.iterdir() if p.name != TOMBSTONES]
                assert all(now < (seen_day(p.name) + 1) * DAY + GRACE_MS for p in left)
            else:
                store = SaltStore(root)


def seen_day(name: str) -> int:
    return int(datetime.strptime(name[:10], "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) // 86_400


def test_collectors_sharing_a_salt_folder_share_the_salt_and_its_destruction(
    tmp_path: Path,
) -> None:
    a, b = SaltStore(tmp_path), SaltStore(tmp_path)
    assert a.salts(NOON) == b.salts(NOON)  # made once, used by both
    after = 20_001 * DAY + GRACE_MS
    assert a.sweep(after) == ["2024-10-04"]  # a destroys the file
    assert 20_000 in b._cache  # b still holds it in memory...
    assert b.sweep(after) == []  # ...until its own sweep: nothing left to unlink,
    assert 20_000 not in b._cache  # but forgotten all the same
    assert b._destroyed(20_000)  # and never made again, whatever its clock says
    assert 20_000 not in b.salts(NOON)
