import stat
from pathlib import Path

from collector.keys import KeyStore


def test_keys_are_created_private_and_persist(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    k = store.get("acme", "2026-11")
    path = tmp_path / "keys" / "acme" / "2026-11.key"
    assert path.read_bytes() == k.secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert KeyStore(tmp_path / "keys").get("acme", "2026-11") == k  # a new process reads it back
    assert list(path.parent.iterdir()) == [path]  # no temp files left behind


def test_keys_differ_per_tenant_and_epoch(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    a, b, c = store.get("acme", "0"), store.get("globex", "0"), store.get("acme", "1")
    assert len({a.secret, b.secret, c.secret}) == 3


def test_rotate_starts_a_new_generation(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    assert store.current_epoch("acme", "2026-11") == "2026-11"
    before = store.get("acme", "2026-11")
    assert store.rotate("acme") == 1
    assert store.current_epoch("acme", "2026-11") == "2026-11.g1"
    assert KeyStore(tmp_path).current_epoch("acme", "2026-12") == "2026-12.g1"  # read by others
    assert store.get("acme", "2026-11.g1").secret != before.secret


def test_shred_destroys_old_keys_but_not_the_one_in_force(tmp_path: Path) -> None:
    import os
    from datetime import UTC, datetime

    store = KeyStore(tmp_path)
    old = store.get("acme", "2026-10")
    current = store.get("acme", "2026-11")
    past = datetime(2026, 10, 15, tzinfo=UTC).timestamp()
    for epoch in ("2026-10", "2026-11"):
        os.utime(tmp_path / "acme" / f"{epoch}.key", (past, past))
    gone = store.shred("acme", datetime(2026, 11, 1, tzinfo=UTC), current_epoch="2026-11")
    assert [k.epoch for k in gone] == ["2026-10"]
    assert not (tmp_path / "acme" / "2026-10.key").exists()
    assert (tmp_path / "acme" / "2026-11.key").read_bytes() == current.secret
    assert store.get("acme", "2026-10").secret != old.secret  # a new, unrelated key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_collectors_sharing_a_key_folder_use_one_key_and_follow_a_rotation(
    tmp_path: Path,
) -> None:
    a, b = KeyStore(tmp_path), KeyStore(tmp_path)  # two processes, one shared folder
    assert a.get("acme", "2026-11") == b.get("acme", "2026-11")
    assert a.rotate("acme") == 1
    assert b.current_epoch("acme", "2026-11") == "2026-11.g1"  # at its very next request
    assert a.rotate("acme") == 2  # twice within one mtime tick: still seen
    assert b.current_epoch("acme", "2026-11") == "2026-11.g2"
    assert b.get("acme", "2026-11.g2") == a.get("acme", "2026-11.g2")


def test_a_key_shredded_by_another_collector_leaves_memory_within_the_recheck_bound(
    tmp_path: Path,
) -> None:
    import os
    from datetime import UTC, datetime

    from collector.keys import RECHECK_S

    clock = Clock()
    a, b = KeyStore(tmp_path), KeyStore(tmp_path, clock)
    old = b.get("acme", "2026-10")
    a.get("acme", "2026-11")
    past = datetime(2026, 10, 15, tzinfo=UTC).timestamp()
    os.utime(tmp_path / "acme" / "2026-10.key", (past, past))
    assert [k.epoch for k in a.shred("acme", datetime(2026, 11, 1, tzinfo=UTC), "2026-11")] == [
        "2026-10"
    ]
    assert b.get("acme", "2026-10") == old  # cached: at most RECHECK_S more
    clock.now += RECHECK_S
    again = b.get("acme", "2026-10")
    assert again.secret != old.secret  # forgotten: a new, unrelated key stands in
