"""Per-tenant pseudonym keys, one file per tenant per epoch: `<data>/keys/<tenant>/<epoch>.key`.

Keys never enter ClickHouse. Files are created 0600 in 0700 folders, written to a temp file and
linked into place, so two processes racing to create an epoch's key end up using the same one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from anonymizer.pseudonym import KEY_BYTES, PseudonymKey
from collector.errors import CollectorError


class KeyStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[tuple[str, str], PseudonymKey] = {}

    def get(self, tenant_id: str, epoch: str) -> PseudonymKey:
        """The key for (tenant, epoch), created on first use."""
        cached = self._cache.get((tenant_id, epoch))
        if cached is not None:
            return cached
        path = self.root / tenant_id / f"{epoch}.key"
        try:
            secret = path.read_bytes()
        except FileNotFoundError:
            secret = self._create(path)
        if len(secret) != KEY_BYTES:
            raise CollectorError(f"key file for tenant {tenant_id} epoch {epoch} is damaged")
        key = PseudonymKey(epoch, secret)
        self._cache[(tenant_id, epoch)] = key
        return key

    def _create(self, path: Path) -> bytes:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process created it first: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path.read_bytes()
