"""Client IP parsing and truncation to a network prefix.

`socket.inet_pton` is about ten times faster than the `ipaddress` module, which matters on the
ingest hot path. An IPv6 address that embeds an IPv4 address (mapped, translated, compatible, 6to4,
Teredo, NAT64) is treated as the IPv4 address it carries, so a /48 cut can never keep it.
"""

from __future__ import annotations

import re
import socket

from anonymizer.errors import InvalidValueError
from anonymizer.types import ClientIp, positional_constructor

_client_ip = positional_constructor(ClientIp)  # every record has an address: ~0.3 us less

_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"
_TRANSLATED_PREFIX = b"\x00" * 8 + b"\xff\xff\x00\x00"
_NAT64_WELL_KNOWN = b"\x00\x64\xff\x9b" + b"\x00" * 8  # 64:ff9b::/96
_NAT64_LOCAL = b"\x00\x64\xff\x9b\x00\x01"  # 64:ff9b:1::/48 (RFC 8215)
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PORT = re.compile(r"[0-9]{1,5}")


def embedded_ipv4(packed: bytes) -> bytes | None:
    """The IPv4 address an IPv6 address carries, if any: IPv4-mapped `::ffff:a.b.c.d`,
    IPv4-translated `::ffff:0:a.b.c.d`, IPv4-compatible `::a.b.c.d` (not `::`, `::1`), 6to4
    `2002:AABB:CCDD::/48`, Teredo `2001:0::/32` (client address inverted in the last 32 bits),
    NAT64 `64:ff9b::/96`, and local-use NAT64 `64:ff9b:1::/48` (the RFC 6052 /48 layout: bits
    48-63 and 72-87; for a longer prefix this takes fewer bits of the real address, never more)."""
    head12 = packed[:12]
    if head12 in (_MAPPED_PREFIX, _TRANSLATED_PREFIX, _NAT64_WELL_KNOWN):
        return packed[12:]
    if head12 == bytes(12):
        return packed[12:] if packed[12:15] != bytes(3) or packed[15] > 1 else None
    if packed[:2] == b"\x20\x02":
        return packed[2:6]
    if packed[:4] == b"\x20\x01\x00\x00":
        return bytes(b ^ 0xFF for b in packed[12:16])
    if packed[:6] == _NAT64_LOCAL:
        return packed[6:8] + packed[9:11]
    return None


def _port_ok(text: str) -> bool:
    return bool(_PORT.fullmatch(text)) and int(text) <= 65535


def parse_ip(text: str) -> ClientIp:
    """Parse an address, with or without a port (`1.2.3.4:80`, `[::1]:80`) or an IPv6 link-local
    zone (`fe80::1%eth0`). Strict: anything else around the address is "not an IP address".

    An IPv6 address that embeds an IPv4 address (see `embedded_ipv4`) is the IPv4 address it
    carries: version 4, cut to the IPv4 prefix and looked up in GeoIP as such, so no bit of the
    IPv4 address beyond its prefix survives in the IPv6 bits kept by a /48 or /64 cut."""
    s = text.strip()
    if s.startswith("["):
        end = s.find("]")
        rest = s[end + 1 :] if end >= 0 else ""
        if end < 0 or (rest and not (rest[0] == ":" and _port_ok(rest[1:]))):
            raise InvalidValueError("not an IP address")
        s = s[1:end]
    elif s.count(":") == 1:
        s, _, port = s.partition(":")
        if not _port_ok(port):
            raise InvalidValueError("not an IP address")
    zone = ""
    pct = s.find("%")
    if pct >= 0:
        s, zone = s[:pct], s[pct + 1 :]
        if not _ZONE.fullmatch(zone):
            raise InvalidValueError("not an IP address")
    if ":" not in s:
        if zone:  # zones belong to IPv6 link-local addresses only
            raise InvalidValueError("not an IP address")
        try:
            packed = socket.inet_pton(socket.AF_INET, s)
        except OSError:
            raise InvalidValueError("not an IP address") from None
        return _client_ip(4, packed, socket.inet_ntop(socket.AF_INET, packed))
    try:
        packed = socket.inet_pton(socket.AF_INET6, s)
    except OSError:
        raise InvalidValueError("not an IP address") from None
    if zone and not (packed[0] == 0xFE and packed[1] & 0xC0 == 0x80):
        raise InvalidValueError("not an IP address")
    v4 = embedded_ipv4(packed)
    if v4 is not None:
        return _client_ip(4, v4, socket.inet_ntop(socket.AF_INET, v4))
    return _client_ip(6, packed, socket.inet_ntop(socket.AF_INET6, packed))


def _cut(packed: bytes, prefix: int) -> bytes:
    """The first `prefix` bits of `packed`, the rest zero (same length)."""
    full, rest = divmod(prefix, 8)
    size = len(packed)
    if full >= size:
        return packed
    if rest:
        return (
            packed[:full]
            + bytes((packed[full] & (0xFF << (8 - rest)) & 0xFF,))
            + bytes(size - full - 1)
        )
    return packed[:full] + bytes(size - full)


def truncate_ip(ip: ClientIp, ipv4_prefix: int, ipv6_prefix: int) -> str:
    """The network that contains `ip`, as CIDR text (`203.0.113.0/24`, `2001:db8:1::/48`)."""
    if ip.version == 4:
        net = socket.inet_ntop(socket.AF_INET, _cut(ip.packed, ipv4_prefix))
        return f"{net}/{ipv4_prefix}"
    net = socket.inet_ntop(socket.AF_INET6, _cut(ip.packed, ipv6_prefix))
    return f"{net}/{ipv6_prefix}"
