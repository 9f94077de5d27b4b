"""Query parameters, checked to the width of the SQL type they are bound to.

ClickHouse converts a query parameter to its declared type by wrapping or clamping: `k=4294967296`
bound as `{k:UInt32}` becomes 0, and a `Date` before 1970 or after 2149-06-06 is not the day that
was asked for. So every parameter is parsed strictly here (plain ASCII digits, ISO dates only)
and range-checked against both its meaning and its SQL type before any statement sees it. A
parameter that is repeated or unknown is refused too: which of two values wins must never be a
guess. Every refusal is a 400 naming the parameter, never echoing its value.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import date

from multidict import MultiMapping

from collector.errors import BadRequest

UINT32_MAX = 2**32 - 1
# ClickHouse `Date`: days since 1970-01-01 in a UInt16
DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(2149, 6, 6)
_DIGITS = re.compile(r"[0-9]{1,20}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_names(query: MultiMapping[str], allowed: Collection[str]) -> None:
    """Refuse unknown and repeated parameters (names are listed from `allowed`, not echoed)."""
    seen: set[str] = set()
    for name, _ in query.items():
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise BadRequest(f"unknown query parameter; this endpoint takes: {known}")
        if name in seen:
            raise BadRequest(f"{name}: given more than once")
        seen.add(name)


def uint(query: MultiMapping[str], name: str, default: int, lo: int, hi: int) -> int:
    """A whole number in `lo..hi` (`hi` at most the SQL type's maximum)."""
    raw = query.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw):
        raise BadRequest(f"{name}: must be a whole number from {lo} to {hi}")
    value = int(raw)
    if not lo <= value <= hi:
        raise BadRequest(f"{name}: must be a whole number from {lo} to {hi}")
    return value


def day(query: MultiMapping[str], name: str, default: date) -> date:
    """A `YYYY-MM-DD` day that ClickHouse's `Date` can hold."""
    raw = query.get(name)
    if raw is None:
        return default
    if not _ISO_DATE.fullmatch(raw):
        raise BadRequest(f"{name}: must be a date YYYY-MM-DD")
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: must be a date YYYY-MM-DD") from None
    if not DATE_MIN <= value <= DATE_MAX:
        raise BadRequest(f"{name}: must be a day from {DATE_MIN} to {DATE_MAX}")
    return value
