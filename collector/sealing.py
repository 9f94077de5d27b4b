"""Key and salt files sealed under a master key (`[storage] master_key_file`), so that a copy of
the shared key folder (a snapshot, a backup of the volume) is useless without the master key,
which lives elsewhere (a secret file: a Docker or Kubernetes secret, a KMS-mounted file).

A sealed file is `MAGIC | nonce (16) | secret XOR pad (32) | tag (32)`: the pad is
HMAC-SHA256(enc_key, nonce | name) and the tag HMAC-SHA256(mac_key, MAGIC | name | nonce |
ciphertext) (encrypt-then-MAC, with a PRF keystream under a fresh random nonce: one block, so no
counter), `enc_key` and `mac_key` derived from the master key by HMAC with distinct labels. The
file's `name` (tenant/epoch, or the salt's day) is bound into both, so a sealed key cannot be
moved to stand for another tenant, epoch or day. Standard library only.

Without a master key files hold the 32 bytes as they are (the default, as before). With one, new
files are sealed; plain files made before it was set are still read (a writer to the folder is
trusted anyway: it could delete every key), so setting a master key needs no migration, and
`collector keys shred` removes the old plain ones in time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from collector.errors import CollectorError, ConfigError

MAGIC = b"TCS1"
NONCE_BYTES = 16
TAG_BYTES = 32
MIN_MASTER_BYTES = 32


class Unsealable(CollectorError):
    """A sealed file whose tag does not verify: another master key, or damaged."""


@dataclass(frozen=True, slots=True)
class Sealer:
    enc_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)

    @classmethod
    def from_master(cls, master: bytes) -> Sealer:
        return cls(
            hmac.digest(master, b"telemetry-collector seal enc v1", hashlib.sha256),
            hmac.digest(master, b"telemetry-collector seal mac v1", hashlib.sha256),
        )

    def _pad(self, nonce: bytes, name: str, n: int) -> bytes:
        return hmac.digest(self.enc_key, nonce + name.encode(), hashlib.sha256)[:n]

    def _tag(self, name: str, nonce: bytes, body: bytes) -> bytes:
        return hmac.digest(self.mac_key, MAGIC + name.encode() + b"\0" + nonce + body, "sha256")

    def seal(self, name: str, secret: bytes) -> bytes:
        if len(secret) > 32:
            raise ValueError("a sealed secret is at most 32 bytes")
        nonce = secrets.token_bytes(NONCE_BYTES)
        body = _xor(secret, self._pad(nonce, name, len(secret)))
        return MAGIC + nonce + body + self._tag(name, nonce, body)

    def open(self, name: str, data: bytes) -> bytes:
        """The secret of a sealed file, or of a plain one (made before sealing was on)."""
        if not is_sealed(data):
            return data
        nonce = data[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        body, tag = data[len(MAGIC) + NONCE_BYTES : -TAG_BYTES], data[-TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(name, nonce, body)):
            raise Unsealable(f"{name}: sealed under another master key, or damaged")
        return _xor(body, self._pad(nonce, name, len(body)))


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def is_sealed(data: bytes) -> bool:
    return data.startswith(MAGIC) and len(data) >= len(MAGIC) + NONCE_BYTES + TAG_BYTES


def seal(sealer: Sealer | None, name: str, secret: bytes) -> bytes:
    return sealer.seal(name, secret) if sealer else secret


def unseal(sealer: Sealer | None, name: str, data: bytes) -> bytes:
    """The secret in a file's bytes; a sealed file without a master key is refused."""
    if sealer is not None:
        return sealer.open(name, data)
    if is_sealed(data):
        raise Unsealable(f"{name}: sealed, and storage.master_key_file is not set")
    return data


def load_sealer(path: Path | None) -> Sealer | None:
    """The sealer of `[storage] master_key_file` (its bytes, surrounding whitespace ignored; at
    least 32), or None when unset."""
    if path is None:
        return None
    try:
        master = path.read_bytes().strip()
    except OSError as e:
        raise ConfigError(f"storage.master_key_file: cannot read: {e.strerror}") from e
    if len(master) < MIN_MASTER_BYTES:
        raise ConfigError(f"storage.master_key_file: at least {MIN_MASTER_BYTES} bytes of secret")
    return Sealer.from_master(master)
