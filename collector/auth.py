"""API keys: the tenant comes from the key, never from the body.

Keys are configured only as SHA-256 hex. The presented key is hashed and compared with every
configured hash in constant time, so neither timing nor an early exit tells which key was close.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from collector.config import TenantConfig
from collector.errors import Forbidden, Unauthorized

KEY_PREFIX = "tck_"


@dataclass(frozen=True, slots=True)
class Tenant:
    """The caller: its tenant, and what the key it used may do."""

    id: str
    plan: str
    key_id: str  # first 12 hex digits of the key's SHA-256: safe to log, names the key
    scopes: frozenset[str] = frozenset({"ingest"})
    name: str = ""  # the key's `name` in the config ("": none given)

    @property
    def actor(self) -> str:
        """Who acts with this key, for people: its name, else its id."""
        return self.name or self.key_id

    def require(self, allowed: frozenset[str]) -> None:
        if "admin" not in self.scopes and not self.scopes & allowed:
            raise Forbidden(f"this key's scopes ({', '.join(sorted(self.scopes))}) do not allow it")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    """A fresh random key (256 bits) in a recognizable form, for `collector init` and `new-key`."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class Authenticator:
    def __init__(self, tenants: tuple[TenantConfig, ...]) -> None:
        self._entries = [
            (bytes.fromhex(k.sha256), Tenant(t.id, t.plan, k.sha256[:12], k.scopes, k.name))
            for t in tenants
            for k in t.all_keys()
        ]

    def by_key_id(self, key_id: str) -> Tenant | None:
        """The caller a signed-in session stands for, while its key is still configured."""
        return next((t for _, t in self._entries if t.key_id == key_id), None)

    def names(self, tenant_id: str) -> dict[str, str]:
        """key id -> name of the tenant's named keys (audit rows carry the key id)."""
        return {t.key_id: t.name for _, t in self._entries if t.id == tenant_id and t.name}

    def authenticate(self, authorization: str | None) -> Tenant:
        if not authorization:
            raise Unauthorized("missing Authorization: Bearer <api key>")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Authorization must be 'Bearer <api key>'")
        # aiohttp decodes header bytes as UTF-8 with surrogateescape: encoding them back the same
        # way hashes the bytes that were sent, whatever they are (never a 500 on non-UTF-8)
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: Tenant | None = None
        for expected, tenant in self._entries:
            if hmac.compare_digest(digest, expected):
                found = tenant
        if found is None:
            raise Unauthorized("unknown API key")
        return found
