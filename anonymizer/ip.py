"""Client IP parsing and truncation to a network prefix.

`socket.inet_pton` is about ten times faster than the `ipaddress` module, which matters on the
ingest hot path. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is treated as the IPv4 address it is, so a
/48 cut can never keep a whole IPv4 address.
"""

from __future__ import annotations

import socket

from anonymizer.errors import InvalidValueError
from anonymizer.types import ClientIp

_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"


def parse_ip(text: str) -> ClientIp:
    """Parse an address, with or without a port (`1.2.3.4:80`, `[::1]:80`) or zone (`%eth0`)."""
    s = text.strip()
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise InvalidValueError("not an IP address")
        s = s[1:end]
    elif s.count(":") == 1:
        s = s.split(":", 1)[0]
    pct = s.find("%")
    if pct >= 0:
        s = s[:pct]
    if ":" not in s:
        try:
            packed = socket.inet_pton(socket.AF_INET, s)
        except OSError:
            raise InvalidValueError("not an IP address") from None
        return ClientIp(4, packed, socket.inet_ntop(socket.AF_INET, packed))
    try:
        packed = socket.inet_pton(socket.AF_INET6, s)
    except OSError:
        raise InvalidValueError("not an IP address") from None
    if packed[:12] == _MAPPED_PREFIX:
        v4 = packed[12:]
        return ClientIp(4, v4, socket.inet_ntop(socket.AF_INET, v4))
    return ClientIp(6, packed, socket.inet_ntop(socket.AF_INET6, packed))


def _cut(packed: bytes, prefix: int) -> bytes:
    full, rest = divmod(prefix, 8)
    out = bytearray(packed[:full])
    if rest and full < len(packed):
        out.append(packed[full] & (0xFF << (8 - rest)) & 0xFF)
    out.extend(b"\x00" * (len(packed) - len(out)))
    return bytes(out)


def truncate_ip(ip: ClientIp, ipv4_prefix: int, ipv6_prefix: int) -> str:
    """The network that contains `ip`, as CIDR text (`203.0.113.0/24`, `2001:db8:1::/48`)."""
    if ip.version == 4:
        net = socket.inet_ntop(socket.AF_INET, _cut(ip.packed, ipv4_prefix))
        return f"{net}/{ipv4_prefix}"
    net = socket.inet_ntop(socket.AF_INET6, _cut(ip.packed, ipv6_prefix))
    return f"{net}/{ipv6_prefix}"
