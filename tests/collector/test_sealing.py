"""Key and salt files sealed under a master key: a copy of the key folder alone is useless."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import ConfigError
from collector.keys import KeyStore
from collector.salts import SaltStore
from collector.sealing import Sealer, Unsealable, load_sealer, unseal

MASTER = b"m" * 32
NOON = 20_000 * 86_400_000 + 43_200_000


@given(st.binary(min_size=0, max_size=32), st.text(min_size=1, max_size=30))
def test_a_sealed_secret_opens_under_its_name_only(secret: bytes, name: str) -> None:
    sealer = Sealer.from_master(MASTER)
    sealed = sealer.seal(name, secret)
    assert sealer.open(name, sealed) == secret
    if len(secret) >= 8:
        assert secret not in sealed[4:]  # the bytes are not in the file
    with pytest.raises(Unsealable):
        sealer.open(name + "x", sealed)  # moved to another tenant, epoch or day
    with pytest.raises(Unsealable):
        Sealer.from_master(b"n" * 32).open(name, sealed)  # another master key
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(Unsealable):
        sealer.open(name, tampered)


def test_plain_files_from_before_stay_readable_and_sealed_ones_need_the_master() -> None:
    sealer = Sealer.from_master(MASTER)
    plain = b"k" * 32
    assert sealer.open("acme/0", plain) == plain
    with pytest.raises(Unsealable, match="master_key_file is not set"):
        unseal(None, "acme/0", sealer.seal("acme/0", plain))


def test_the_master_key_file_is_checked(tmp_path: Path) -> None:
    assert load_sealer(None) is None
    (tmp_path / "short").write_bytes(b"x" * 31 + b"\n")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_sealer(tmp_path / "short")
    with pytest.raises(ConfigError, match="cannot read"):
        load_sealer(tmp_path / "missing")
    (tmp_path / "ok").write_bytes(MASTER + b"\n")
    assert load_sealer(tmp_path / "ok") == Sealer.from_master(MASTER)
    assert "m" * 8 not in repr(load_sealer(tmp_path / "ok"))


def test_sealed_key_stores_share_keys_that_a_copy_of_the_folder_cannot_use(
    tmp_path: Path,
) -> None:
    sealer = Sealer.from_master(MASTER)
    a, b = KeyStore(tmp_path, sealer=sealer), KeyStore(tmp_path, sealer=sealer)
    key = a.get("acme", "2026-11")
    assert b.get("acme", "2026-11") == key
    data = (tmp_path / "acme" / "2026-11.key").read_bytes()
    assert key.secret not in data and len(data) > 32
    with pytest.raises(Unsealable):
        KeyStore(tmp_path).get("acme", "2026-11")  # the folder alone
    with pytest.raises(Unsealable):
        KeyStore(tmp_path, sealer=Sealer.from_master(b"z" * 32)).get("acme", "2026-11")


def test_sealed_salts_are_shared_and_unreadable_without_the_master(tmp_path: Path) -> None:
    sealer = Sealer.from_master(MASTER)
    salts = SaltStore(tmp_path, sealer).salts(NOON)
    assert SaltStore(tmp_path, sealer).salts(NOON) == salts
    (path,) = tmp_path.glob("*.salt")
    assert salts[20_000] not in path.read_bytes()
    with pytest.raises(Unsealable):
        SaltStore(tmp_path).salts(NOON)
