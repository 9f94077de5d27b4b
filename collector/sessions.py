"""Dashboard sign-in sessions, kept server-side in the data dir.

The browser holds only a random 256-bit token (an HttpOnly cookie); the API key it signed in with
is never stored or sent back. A session is a small file named by the SHA-256 of its token (so a
listing of the folder cannot be replayed as cookies), holding the key id it stands for, a CSRF
token and its expiry. Files, not memory: `serve --workers N` runs several processes on one port,
and any of them may answer the next request. An expired session is refused and removed; sign-out
removes it at once; removing a key from the config ends its sessions (the key id no longer
resolves).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

TOKEN_BYTES = 32
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    csrf: str
    expires: float


class SessionStore:
    def __init__(self, folder: Path, ttl_s: int) -> None:
        self.folder = folder
        self.ttl_s = ttl_s

    def _path(self, token: str) -> Path | None:
        if not 20 <= len(token) <= 64 or not set(token) <= _TOKEN_CHARS:
            return None
        return self.folder / (hashlib.sha256(token.encode()).hexdigest() + ".session")

    def create(self, key_id: str) -> tuple[str, Session]:
        """A new session for the key; returns the cookie token and the session."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sweep()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(key_id, secrets.token_urlsafe(24), time.time() + self.ttl_s)
        path = self._path(token)
        assert path is not None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(
                orjson.dumps({"key_id": key_id, "csrf": session.csrf, "expires": session.expires})
            )
        return token, session

    def get(self, token: str | None) -> Session | None:
        path = self._path(token or "")
        if path is None:
            return None
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        session = Session(str(data["key_id"]), str(data["csrf"]), float(data["expires"]))
        if session.expires <= time.time():
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return session

    def delete(self, token: str | None) -> None:
        path = self._path(token or "")
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    def sweep(self) -> int:
        """Remove expired sessions (run at each sign-in); returns how many."""
        gone, now = 0, time.time()
        for path in self.folder.glob("*.session"):
            with contextlib.suppress(OSError, orjson.JSONDecodeError, KeyError, ValueError):
                if float(orjson.loads(path.read_bytes())["expires"]) <= now:
                    path.unlink()
                    gone += 1
        return gone
