"""URL scrubbing: drop query parameters not on the allowlist, cut referrers to their host, and
replace path segments that look like personal data with placeholders.

Rules are compiled once when the policy is built, never per record.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from anonymizer.errors import PolicyError

_EMAIL = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
# A token: a long hex string, a JWT, or a long mixed-case alphanumeric run. Lower-case slugs with
# dashes ("logstash-monitorama-2013") are ordinary page names and stay.
_TOKEN = re.compile(
    r"^(?:[0-9a-fA-F]{16,}"
    r"|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
    r"|(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[A-Z])[A-Za-z0-9_-]{20,})$"
)
_IPV4 = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
_DIGITS_RULE = re.compile(r"^digits>=(\d+)$")
REDACT_RULES = ("email", "token", "uuid", "digits>=N")


@dataclass(frozen=True, slots=True)
class UrlScrubber:
    """Compiled form of the `[url]` policy section."""

    keep_query_params: frozenset[str]
    redact_email: bool
    redact_uuid: bool
    redact_token: bool
    digits_run: re.Pattern[str] | None
    rules: tuple[str, ...]

    @classmethod
    def build(cls, keep_query_params: list[str], redact: list[str]) -> UrlScrubber:
        digits: re.Pattern[str] | None = None
        for i, rule in enumerate(redact):
            m = _DIGITS_RULE.match(rule)
            if m:
                n = int(m.group(1))
                if n < 1:
                    raise PolicyError(f"url.redact[{i}]", "digits>=N needs N >= 1")
                digits = re.compile(r"\d{" + str(n) + ",}")
            elif rule not in ("email", "token", "uuid"):
                raise PolicyError(
                    f"url.redact[{i}]", f"unknown rule {rule!r}; known: {', '.join(REDACT_RULES)}"
                )
        return cls(
            frozenset(keep_query_params),
            "email" in redact,
            "uuid" in redact,
            "token" in redact,
            digits,
            tuple(redact),
        )

    def redact_value(self, value: str) -> str:
        """The placeholder for a value that looks personal, else the value itself."""
        if not value:
            return value
        plain = unquote(value) if "%" in value else value
        if _is_ip(plain):  # fixed rule, not a policy choice: a raw address is never stored
            return "{ip}"
        if self.redact_email and "@" in plain and _EMAIL.match(plain):
            return "{email}"
        if self.redact_uuid and _UUID.match(plain):
            return "{uuid}"
        if self.redact_token and _TOKEN.match(plain):
            return "{token}"
        if self.digits_run is not None and self.digits_run.search(plain):
            return "{id}"
        return value

    def scrub(self, target: str) -> tuple[str, str]:
        """Split a request target into a scrubbed path and the allowlisted query string."""
        return _scrub_cached(self, target)

    def _scrub(self, target: str) -> tuple[str, str]:
        path, _, query = target.partition("#")[0].partition("?")
        # `;` matrix parameters (`;jsessionid=...`) carry session tokens: dropped with the query
        path = "/".join(self.redact_value(seg.partition(";")[0]) for seg in path.split("/"))
        if not query or not self.keep_query_params:
            return path, ""
        kept = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            if name in self.keep_query_params:
                kept.append(f"{name}{eq}{self.redact_value(value)}")
        return path, "&".join(kept)


_ROUTE_ID = re.compile(r"^(?:\d+|[0-9a-fA-F]{8,}|\{(?:id|uuid|token|email)\})$")


@lru_cache(maxsize=65_536)
def route_template(path: str) -> str:
    """The route a scrubbed path belongs to, for grouping: every segment that is a number, a
    long hex string or a placeholder becomes `{id}` (`/orders/42/items` -> `/orders/{id}/items`).
    Short numbers are not personal and stay in `path`; the route groups them anyway."""
    return "/".join("{id}" if _ROUTE_ID.match(seg) else seg for seg in path.split("/"))


def _is_ip(text: str) -> bool:
    if _IPV4.match(text):
        return True
    if ":" in text:
        try:
            socket.inet_pton(socket.AF_INET6, text.strip("[]"))
        except OSError:
            return False
        return True
    return False


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
def _scrub_cached(scrubber: UrlScrubber, target: str) -> tuple[str, str]:
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
    """Lower-cased host without port; an IP literal becomes `{ip}` so no address is stored."""
    if host.startswith("["):
        return "{ip}"
    host = host.split(":", 1)[0].lower() if host.count(":") <= 1 else host.lower()
    if ":" in host or _IPV4.match(host):
        return "{ip}"
    return host
