"""Per-tenant pseudonym keys, one file per tenant per epoch: `<data>/keys/<tenant>/<epoch>.key`.

Keys never enter ClickHouse. Files are created 0600 in 0700 folders, written to a temp file and
linked into place, so two processes racing to create an epoch's key end up using the same one.

Several collectors may share one key folder (`[storage] keys_dir`, docs/security.md): a key is
created once (the link above) and used by all; a rotation is seen by every collector at its next
request (the generation file is checked each time), and a key shredded by one is dropped from the
memory of the others within `RECHECK_S` (a cached key is checked against its file that often).

An epoch is the policy's rotation period (`0`, `2026-11`, `2026-11-25`); `collector keys rotate`
starts a new generation inside it (`2026-11.g1`) at once. `collector keys shred` deletes old keys:
the pseudonyms made with them can never be linked to anyone again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from anonymizer.pseudonym import KEY_BYTES, PseudonymKey
from collector.errors import CollectorError
from collector.sealing import Sealer, seal, unseal

GENERATION_FILE = "generation"
RECHECK_S = 1.0  # a cached key is checked against its file at most this long after the last time
SHRED_LOG = "shredded.log"  # one `epoch unix-time` line per shredded key


@dataclass(frozen=True, slots=True)
class KeyFile:
    tenant_id: str
    epoch: str
    path: Path
    created: float


class KeyStore:
    def __init__(
        self,
        root: Path,
        clock: Callable[[], float] = time.monotonic,
        sealer: Sealer | None = None,
    ) -> None:
        self.root = root
        self._clock = clock
        self._sealer = sealer  # `[storage] master_key_file`: files sealed (collector/sealing.py)
        # (tenant, epoch) -> (key, when its file was last seen, monotonic)
        self._cache: dict[tuple[str, str], tuple[PseudonymKey, float]] = {}
        self._generations: dict[str, tuple[tuple[int, int, int], int]] = {}

    def generation(self, tenant_id: str) -> int:
        """The tenant's rotation generation; re-read when the file changes (a rotate by the CLI
        takes effect in a running service at its next request)."""
        path = self.root / tenant_id / GENERATION_FILE
        try:
            st = path.stat()
        except FileNotFoundError:
            return 0
        # a rotation replaces the file (a new inode): seen even within one mtime tick
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._generations.get(tenant_id)
        if cached and cached[0] == stamp:
            return cached[1]
        gen = int(path.read_text().strip() or 0)
        self._generations[tenant_id] = (stamp, gen)
        return gen

    def current_epoch(self, tenant_id: str, period: str) -> str:
        gen = self.generation(tenant_id)
        return f"{period}.g{gen}" if gen else period

    def get(self, tenant_id: str, epoch: str) -> PseudonymKey:
        """The key for (tenant, epoch), created on first use. A cached key whose file another
        collector shredded is forgotten within RECHECK_S (and a new, unrelated one made)."""
        now = self._clock()
        path = self.root / tenant_id / f"{epoch}.key"
        cached = self._cache.get((tenant_id, epoch))
        if cached is not None:
            if now - cached[1] < RECHECK_S:
                return cached[0]
            if path.exists():
                self._cache[(tenant_id, epoch)] = (cached[0], now)
                return cached[0]
            del self._cache[(tenant_id, epoch)]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = self._create(path, f"{tenant_id}/{epoch}")
        secret = unseal(self._sealer, f"{tenant_id}/{epoch}", data)
        if len(secret) != KEY_BYTES:
            raise CollectorError(f"key file for tenant {tenant_id} epoch {epoch} is damaged")
        key = PseudonymKey(epoch, secret)
        self._cache[(tenant_id, epoch)] = (key, now)
        return key

    def _create(self, path: Path, name: str) -> bytes:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, seal(self._sealer, name, secrets.token_bytes(KEY_BYTES)))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process created it first: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        _fsync_dir(path.parent)
        return path.read_bytes()

    def rotate(self, tenant_id: str) -> int:
        """Start a new key generation now; returns it. Old keys stay until shredded."""
        folder = self.root / tenant_id
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        gen = self.generation(tenant_id) + 1
        tmp = folder / f".{GENERATION_FILE}.tmp"
        tmp.write_text(f"{gen}\n")
        os.replace(tmp, folder / GENERATION_FILE)
        _fsync_dir(folder)
        return gen

    def key_files(self, tenant_id: str) -> list[KeyFile]:
        folder = self.root / tenant_id
        if not folder.exists():
            return []
        return sorted(
            (KeyFile(tenant_id, p.stem, p, p.stat().st_mtime) for p in folder.glob("*.key")),
            key=lambda k: (k.created, k.epoch),
        )

    def shred(self, tenant_id: str, before: datetime, current_epoch: str) -> list[KeyFile]:
        """Delete every key created before `before` except the one in force. The bytes are
        overwritten before the file is removed, then the folder is synced."""
        gone = []
        for k in self.key_files(tenant_id):
            if k.epoch == current_epoch or k.created >= before.timestamp():
                continue
            with open(k.path, "r+b") as f:
                f.write(secrets.token_bytes(max(KEY_BYTES, k.path.stat().st_size)))
                f.flush()
                os.fsync(f.fileno())
            k.path.unlink()
            self._cache.pop((tenant_id, k.epoch), None)
            gone.append(k)
        if gone:
            with open(self.root / tenant_id / SHRED_LOG, "a") as log:
                for k in gone:
                    log.write(f"{k.epoch} {time.time():.0f}\n")  # the privacy view lists them
            _fsync_dir(self.root / tenant_id)
        return gone

    def shredded(self, tenant_id: str) -> list[tuple[str, float]]:
        """(epoch, when) of every key shredded, oldest first (from the shred log)."""
        try:
            lines = (self.root / tenant_id / SHRED_LOG).read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            epoch, _, when = line.partition(" ")
            if when.isdigit():
                out.append((epoch, float(when)))
        return out


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)
