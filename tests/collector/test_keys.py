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
