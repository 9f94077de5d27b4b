"""The client address of a log line that carries a forwarded chain (`X-Forwarded-For`,
`Forwarded`), per `[ingest] trusted_proxies`.

A proxy appends the address it received the request from, so the chain read from the right is
the path back towards the client, and only entries written by proxies we trust are worth
anything: whatever is left of the first untrusted address may have been typed by the client.
The client is therefore the first untrusted address from the right of `chain + [peer]`. When
every address is trusted (a request from inside), it is the leftmost one. The proxy's own
address is never the answer unless nothing was forwarded at all.

A chain entry that is not an address (`unknown`, an obfuscated `_hidden` node, garbage) where
the walk needs it ends the walk with an error: the client cannot be known, and guessing would
store a proxy's address as a visitor. Nothing here echoes an address into a message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from anonymizer.errors import InvalidValueError, RecordInvalid
from anonymizer.ip import parse_ip

# Loopback, RFC 1918 and unique-local IPv6: the addresses of proxies inside one's own network.
DEFAULT_TRUSTED = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
MAX_CHAIN = 64  # entries looked at, from the right; a longer chain is refused
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, cidrs: Iterable[str]) -> TrustedProxies:
        """Raises ValueError naming the entry's position for a CIDR that does not parse."""
        nets: list[Network] = []
        for i, text in enumerate(cidrs):
            try:
                nets.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(f"entry {i} is not a CIDR (a.b.c.d/n or x::/n)") from None
        return cls(tuple(nets))

    def trusts(self, packed: bytes) -> bool:
        address = ipaddress.ip_address(packed)
        return any(address in net for net in self.networks if net.version == address.version)


DEFAULT_PROXIES = TrustedProxies.parse(DEFAULT_TRUSTED)


def _chain_error(reason: str) -> RecordInvalid:
    return RecordInvalid("ip", f"forwarded chain: {reason}")


def client_address(peer: str, chain: Sequence[str], trusted: TrustedProxies) -> str:
    """The client's address text (without port) given the connecting `peer` and the forwarded
    `chain` (leftmost first). A peer that is not an address is returned as it is, for the
    validator to reject by name; an untrusted peer is the client, whatever it forwarded."""
    if not chain:
        return peer
    try:
        ip = parse_ip(peer)
    except InvalidValueError:
        return peer
    if not trusted.trusts(ip.packed):
        return peer
    if len(chain) > MAX_CHAIN:
        raise _chain_error(f"more than {MAX_CHAIN} entries")
    for entry in reversed(chain):
        try:
            ip = parse_ip(entry)
        except InvalidValueError:
            raise _chain_error(
                "the entry where the client should be is not an address "
                "(unknown, obfuscated or malformed)"
            ) from None
        if not trusted.trusts(ip.packed):
            return ip.text
    return ip.text  # every hop trusted: the leftmost is the client


def x_forwarded_for(value: str) -> list[str]:
    """`X-Forwarded-For: a, b, c` -> ["a", "b", "c"]; `-` or empty: []."""
    value = value.strip()
    if not value or value == "-":
        return []
    return [part.strip() for part in value.split(",")]


def forwarded(value: str) -> list[str]:
    """RFC 7239 `Forwarded: for=a;proto=https, for="[b]:80"` -> the `for` values, in order.
    An element without `for` stands for a hop that did not say: it is kept as "" (not an
    address), so the walk cannot step over it."""
    value = value.strip()
    if not value or value == "-":
        return []
    out: list[str] = []
    for element in value.split(","):
        found = ""
        for pair in element.split(";"):
            name, _, v = pair.strip().partition("=")
            if name.strip().lower() == "for":
                found = v.strip().strip('"')
                break
        out.append(found)
    return out
