"""URL scrubbing: drop query parameters not on the allowlist, cut referrers to their host, and
replace path segments that look like personal data with placeholders.

Rules are compiled once when the policy is built, never per record.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from functools import lru_cache

from anonymizer.detectors import PLACEHOLDERS, Detectors, normalize
from anonymizer.errors import PolicyError

_DIGITS_RULE = re.compile(r"^digits>=(\d+)$")
REDACT_RULES = ("email", "token", "uuid", "digits>=N")
# Detected in every path segment and kept query value whatever `url.redact` says: a raw address,
# phone, card or bank account number is never stored.
FIXED_URL_DETECTORS = frozenset({"ip", "phone", "card", "iban"})


@dataclass(frozen=True, slots=True)
class UrlScrubber:
    """Compiled form of the `[url]` policy section."""

    keep_query_params: frozenset[str]
    detectors: Detectors
    rules: tuple[str, ...]
    # hashed once: every scrub is memoized under (scrubber, target), ~0.3 us a hash of the fields
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.keep_query_params, self.detectors, self.rules)
        object.__setattr__(self, "_hash", hash(fields))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def build(cls, keep_query_params: list[str], redact: list[str]) -> UrlScrubber:
        digits: int | None = None
        names = set(FIXED_URL_DETECTORS)
        for i, rule in enumerate(redact):
            m = _DIGITS_RULE.match(rule)
            if m:
                digits = int(m.group(1))
                if digits < 1:
                    raise PolicyError(f"url.redact[{i}]", "digits>=N needs N >= 1")
                names.add("id")
            elif rule in ("email", "token", "uuid"):
                names.add(rule)
            else:
                raise PolicyError(
                    f"url.redact[{i}]", f"unknown rule {rule!r}; known: {', '.join(REDACT_RULES)}"
                )
        detectors = Detectors.build(frozenset(names), digits)
        return cls(frozenset(keep_query_params), detectors, tuple(redact))

    def redact_value(self, value: str, plus_is_space: bool = False) -> str:
        """The placeholder for a value (a path segment, a query value) in which a detector finds
        personal data, even inside other text or percent-encoded; else the value itself."""
        return self._redact(value, plus_is_space)[0]

    def _redact(self, value: str, plus_is_space: bool = False) -> tuple[str, str]:
        if not value:
            return value, ""
        found = self.detectors.find(value, plus_is_space)
        return (PLACEHOLDERS[found], found) if found else (value, "")  # type: ignore[index]

    def scrub(self, target: str) -> tuple[str, str]:
        """Split a request target into a scrubbed path and the allowlisted query string."""
        path, query, _ = _scrub_cached(self, target)
        return path, query

    def scrub_found(self, target: str) -> tuple[str, str, str]:
        """`scrub` and the first class of personal data a detector found ("" for none)."""
        return _scrub_cached(self, target)

    def path_findings(self, target: str) -> tuple[str, ...]:
        """The class a detector found in each path segment of `target` ("" where none), as
        `scrub` finds them: what `explain` reports the path operator did."""
        path = target.partition("#")[0].partition("?")[0]
        return tuple(self._redact(seg.partition(";")[0])[1] for seg in path.split("/"))

    def _scrub(self, target: str) -> tuple[str, str, str]:
        path, _, query = target.partition("#")[0].partition("?")
        found = ""
        segments = []
        # `;` matrix parameters (`;jsessionid=...`) carry session tokens: dropped with the query
        for seg in path.split("/"):
            stored, hit = self._redact(seg.partition(";")[0])
            segments.append(stored)
            found = found or hit
        path = "/".join(segments)
        if not query or not self.keep_query_params:
            return path, "", found
        kept = []
        # `;` separates parameters too (HTML 4, many servers): a `;`-carried one is checked alike
        for pair in query.replace(";", "&").split("&"):
            name, eq, value = pair.partition("=")
            if name in self.keep_query_params:
                stored, hit = self._redact(value, plus_is_space=True)
                kept.append(f"{name}{eq}{stored}")
                found = found or hit
        return path, "&".join(kept), found


_ROUTE_ID = re.compile(r"^(?:\d+|[0-9a-fA-F]{8,}|\{(?:id|uuid|token|email|phone|card|iban|ip)\})$")


@lru_cache(maxsize=65_536)
def route_template(path: str) -> str:
    """The route a scrubbed path belongs to, for grouping: every segment that is a number, a
    long hex string or a placeholder becomes `{id}` (`/orders/42/items` -> `/orders/{id}/items`).
    Short numbers are not personal and stay in `path`; the route groups them anyway."""
    return "/".join("{id}" if _ROUTE_ID.match(seg) else seg for seg in path.split("/"))


def split_url(url: str) -> tuple[str, str]:
    """(host, request target) of an absolute URL; ("", url) for a path. Userinfo is dropped."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.isalpha():
        return "", url
    end = len(rest)
    for c in "/?#":
        i = rest.find(c)
        if 0 <= i < end:
            end = i
    target = rest[end:]
    return rest[:end].rpartition("@")[2], target if target.startswith("/") else "/" + target


# Real traffic repeats a few thousand paths, referrers and hosts: memoizing the pure functions
# halves the per-record cost. The caches live in memory only, like the request itself.
@lru_cache(maxsize=65_536)
def _scrub_cached(scrubber: UrlScrubber, target: str) -> tuple[str, str, str]:
    return scrubber._scrub(target)


@lru_cache(maxsize=16_384)
def referrer_host(referrer: str) -> str:
    """Only the host of a referrer: its path and query can carry anything, even an email."""
    if not referrer or referrer == "-":
        return ""
    _, sep, rest = referrer.partition("://")
    if not sep:
        if not referrer.startswith("//"):
            return ""
        rest = referrer[2:]
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return scrub_host(authority.rpartition("@")[2])


@lru_cache(maxsize=16_384)
def scrub_host(host: str) -> str:
    """Lower-cased host without userinfo, port or trailing dot. An IP literal in any form the
    resolver accepts (`[::1]`, `3232235777`, `0300.0250.0.1`, `0xc0a80001`, `10.1`) becomes
    `{ip}`; an address or other personal data inside a label (`ec2-54-1-2-3.compute...`,
    `10.1.2.3.nip.io`) is replaced in place."""
    host = host.strip().rpartition("@")[2]
    if host.startswith("["):
        return "{ip}"
    host = host.split(":", 1)[0] if host.count(":") == 1 else host
    host = host.rstrip(".")
    if ":" in host:
        return "{ip}"
    plain = normalize(host)
    if plain and _inet_aton(plain):
        return "{ip}"
    redacted, found = HOST_DETECTORS.redact(plain)  # before lower(): a token is mixed-case
    return (redacted if found else host).lower()


HOST_DETECTORS = Detectors.build()


def _inet_aton(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except OSError:
        return False
    return True
