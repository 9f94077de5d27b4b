"""Enrichment: facts derived from the full record before anonymization cuts it.

User agents: `user-agents` decides mobile / tablet / PC / bot, but its own parse goes through the
legacy pure-Python `ua_parser.user_agent_parser` (~360 µs here). We feed its classifier from
ua-parser 1.x's best resolver instead (the Rust `ua-parser-rs`, ~20 µs, and newer rules), behind an
LRU cache (~1 µs a hit): real traffic repeats a few thousand agents.

GeoIP: looked up on the FULL address (a /24 can straddle countries); the reader is opened once,
memory-mapped. Without a database configured, geo columns stay empty. A City lookup decodes the
whole record (names in eight languages) into Python objects: ~12 µs with GeoLite2-City, more than
half of everything else a record costs. Traffic repeats its addresses (a visitor's page views,
its assets), so answers are kept in a bounded cache per reader. Its keys are not the addresses:
each is a keyed BLAKE2b digest of the packed address under a random key made at start and never
stored (~0.5 µs), so the cache holds no address a memory dump could give back; full, it forgets
its oldest entry first.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from hashlib import blake2b
from pathlib import Path
from typing import Any, cast

import maxminddb
import ua_parser
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

from anonymizer import ClientIp, GeoInfo, UserAgentInfo
from anonymizer.types import UNKNOWN_GEO, UNKNOWN_USER_AGENT
from collector.errors import ConfigError

_parser = ua_parser.Parser(ua_parser.BestAvailableResolver(ua_parser.load_builtins()))


class _FastUserAgent(UserAgent):  # type: ignore[misc]
    """`user_agents.UserAgent` with its parse done by ua-parser 1.x's best resolver."""

    def __init__(self, ua: str) -> None:
        r = _parser(ua, ua_parser.Domain.ALL)
        self.ua_string = ua
        b, o, d = r.user_agent, r.os, r.device
        self.browser = (
            parse_browser(b.family, b.major, b.minor, b.patch) if b else parse_browser("Other")
        )
        self.os = (
            parse_operating_system(o.family, o.major, o.minor, o.patch, o.patch_minor)
            if o
            else parse_operating_system("Other")
        )
        self.device = (
            parse_device(d.family, d.brand, d.model) if d else parse_device("Other", None, None)
        )


def _parse_user_agent(ua: str) -> UserAgentInfo:
    if not ua:
        return UNKNOWN_USER_AGENT
    u = _FastUserAgent(ua)
    version = u.os.version
    return UserAgentInfo(
        browser_family=u.browser.family or "Other",
        browser_major=str(u.browser.version[0]) if u.browser.version else "",
        os_family=u.os.family or "Other",
        os_version=".".join(str(v) for v in version[:2]),
        device_family=u.device.family or "Other",
        device_brand=u.device.brand or "",
        device_model=u.device.model or "",
        is_mobile=bool(u.is_mobile),
        is_tablet=bool(u.is_tablet),
        is_pc=bool(u.is_pc),
        is_bot=bool(u.is_bot),
    )


class UserAgentParser:
    """Parses user agents with a per-instance LRU cache (one per app, no module-level state)."""

    def __init__(self, cache_size: int) -> None:
        self.parse = (
            lru_cache(maxsize=cache_size)(_parse_user_agent) if cache_size else _parse_user_agent
        )

    def cache_info(self) -> Any:
        info = getattr(self.parse, "cache_info", None)
        return info() if info else None


class GeoIp:
    """City/Country lookups on the full client address, answers cached (see above)."""

    def __init__(self, database: Path | None, cache_size: int = 0) -> None:
        self._reader: maxminddb.Reader | None = None
        self._cache: dict[bytes, GeoInfo] = {}
        self._cache_size = cache_size
        self._cache_key = secrets.token_bytes(32)  # memory only: the cache's keys mean nothing
        self._answers: dict[GeoInfo, GeoInfo] = {}  # one object per distinct answer
        self.cache_hits = self.cache_misses = 0
        if database is not None:
            try:
                self._reader = maxminddb.open_database(str(database), maxminddb.MODE_MMAP_EXT)
            except (OSError, ValueError) as e:
                raise ConfigError(f"geoip.database: cannot open {database}: {e}") from e

    @property
    def enabled(self) -> bool:
        return self._reader is not None

    def lookup(self, ip: ClientIp) -> GeoInfo:
        if self._reader is None:
            return UNKNOWN_GEO
        if not self._cache_size:
            return self._read(ip)
        key = blake2b(ip.packed, key=self._cache_key, digest_size=16).digest()
        hit = self._cache.get(key)
        if hit is not None:
            self.cache_hits += 1
            return hit
        self.cache_misses += 1
        geo = self._read(ip)
        geo = self._answers.setdefault(geo, geo)
        if len(self._answers) > self._cache_size:  # bounded whatever the traffic
            self._answers.clear()
        if len(self._cache) >= self._cache_size:
            del self._cache[next(iter(self._cache))]  # the oldest entry (dicts keep order)
        self._cache[key] = geo
        return geo

    def _read(self, ip: ClientIp) -> GeoInfo:
        assert self._reader is not None
        try:
            hit = self._reader.get(ip.text)
        except ValueError:  # an IPv6 address in an IPv4-only database
            return UNKNOWN_GEO
        if not isinstance(hit, dict):
            return UNKNOWN_GEO
        country = _table(hit.get("country")) or _table(hit.get("registered_country"))
        subdivisions = hit.get("subdivisions")
        region = _table(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else {}
        return GeoInfo(
            country=str(country.get("iso_code", "")),
            region=str(region.get("iso_code", "")),
            city=str(_table(_table(hit.get("city")).get("names")).get("en", "")),
        )

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _table(value: object) -> dict[str, Any]:
    """A map of the database's record, or {} where the database has something else."""
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


class Enricher:
    """The enrichment stage as one object: what the row builders of every kind call."""

    def __init__(self, user_agents: UserAgentParser, geoip: GeoIp) -> None:
        self.user_agent = user_agents.parse
        self._geo = geoip.lookup

    def geo(self, ip: ClientIp | None) -> GeoInfo:
        return self._geo(ip) if ip is not None else UNKNOWN_GEO
