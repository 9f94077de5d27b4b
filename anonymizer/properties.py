"""Free-form event properties: keys are kept, values that look like personal data are replaced.

A property map is where senders put whatever they had at hand, so values are checked against the
shapes of personal data we know (email, phone number, IP address, long digit runs such as card
or account numbers) and replaced by a placeholder naming the shape.
"""

from __future__ import annotations

import re
import socket

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
# +country code or a leading 0/(area), then at least 7 more digits with common separators
_PHONE = re.compile(
    r"(?:\+|\b00)\d[\d ()./-]{6,}\d|\(\d{2,5}\)[\d ./-]{5,}\d|\b0\d{2,4}[ ./-]\d[\d ./-]{4,}\d"
)
_DIGITS = re.compile(r"\d{6,}")

PropertyValue = str | int | float | bool


def _has_ip(text: str) -> bool:
    """Candidates by shape, confirmed by the address parser (so `12:30:45` is not an IPv6)."""
    for pattern, family in ((_IPV4, socket.AF_INET), (_IPV6, socket.AF_INET6)):
        if family == socket.AF_INET6 and ":" not in text:
            continue
        for m in pattern.finditer(text):
            try:
                socket.inet_pton(family, m.group(0))
            except OSError:
                continue
            return True
    return False


def redact_value(value: PropertyValue) -> str:
    """The stored form of one value: its text, or a placeholder when it looks personal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, float) else str(value)
    if "@" in text and _EMAIL.search(text):
        return "{email}"
    if _has_ip(text):
        return "{ip}"
    if _PHONE.search(text):
        return "{phone}"
    if _DIGITS.search(text):
        return "{id}"
    return text


def redact_properties(props: tuple[tuple[str, PropertyValue], ...]) -> dict[str, str]:
    return {key: redact_value(value) for key, value in props}
