"""Keyed pseudonyms: the same input gives the same token under one key, nothing without it.

Keyed BLAKE2b (not a salted plain hash): without the tenant's key for the epoch nobody can test
a guessed user id against a stored token, and destroying the key makes tokens unlinkable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

KEY_BYTES = 32
DIGEST_BYTES = 16  # 128 bits: collision-free at any realistic scale, well above the 64-bit floor
_PERSON = b"tc-pseudonym-v1"


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    """A tenant's secret for one key epoch; repr never shows the secret."""

    epoch: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise ValueError(f"a pseudonym key must be {KEY_BYTES} bytes")


def pseudonymize(key: PseudonymKey, field_name: str, value: str) -> str:
    """Token for `value` of `field_name`; empty input stays empty so absence is not a token.

    The field name is part of the input, so a user id and a session id that happen to be equal
    get unrelated tokens.
    """
    if not value:
        return ""
    h = hashlib.blake2b(key=key.secret, digest_size=DIGEST_BYTES, person=_PERSON)
    h.update(field_name.encode())
    h.update(b"\x00")
    h.update(value.encode())
    return h.hexdigest()


_VISITOR_PERSON = b"tc-visitor-v1"
DAY_MS = 86_400_000


def daily_visitor_id(salt: bytes, tenant_id: str, ip_packed: bytes, user_agent: str) -> str:
    """Cookieless visitor id: the same (tenant, address, agent) gives the same id within one
    day's salt; once that salt is destroyed, nothing links the id to anyone or to other days."""
    # one message in one call: the same digest as feeding its parts in turn (~0.3 us less)
    message = b"%s\x00%s\x00%s" % (tenant_id.encode(), ip_packed, user_agent.encode())
    return hashlib.blake2b(
        message, key=salt, digest_size=DIGEST_BYTES, person=_VISITOR_PERSON
    ).hexdigest()


_COARSE_PERSON = b"tc-coarse-v1"
COARSE_MARK = "~"  # a coarse visitor id starts with it; a daily one is plain hex


def coarse_visitor_id(tenant_id: str, day: int, *stored: str) -> str:
    """The subject of a record whose day salt is gone: a hash of the tenant, the UTC day and
    columns the row stores anyway (address prefix, client families). It tells nothing the row
    does not: anyone who reads the row can group by those columns. It is coarser than the daily
    visitor id (everyone behind one prefix with the same client families is one subject), so a
    group counted by it never has more subjects than people; the day in the hash keeps it from
    being a join key across days."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES, person=_COARSE_PERSON)
    h.update(tenant_id.encode())
    h.update(b"\x00%d" % day)
    for value in stored:
        h.update(b"\x00")
        h.update(value.encode())
    return COARSE_MARK + h.hexdigest()
