import stat
from pathlib import Path

from collector.salts import GRACE_MS, SaltStore

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
    fresh = SaltStore(tmp_path / "other")
    assert 20_000 not in fresh.salts(early_next_day)  # a past day's salt is never made afresh


def test_sweep_destroys_after_day_plus_grace(tmp_path: Path) -> None:
    store = SaltStore(tmp_path)
    store.salts(NOON)
    assert store.sweep(20_001 * DAY + GRACE_MS - 1) == []
    assert store.sweep(20_001 * DAY + GRACE_MS) == ["2024-10-04"]
    assert not (tmp_path / "2024-10-04.salt").exists()
    assert 20_000 not in store.salts(20_001 * DAY + 1)  # gone from memory too
