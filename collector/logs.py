"""Logging that cannot leak: every formatted line (message, traceback and all) is scrubbed of IP
addresses and email addresses before it is written.

Our own log calls name routes, counts and key ids only; this is the net under the libraries
that do not (aiohttp logs "Error handling request from <client address>" on a malformed request,
and exception texts may quote input).
"""

from __future__ import annotations

import logging
import re
import socket

from collector import log_limits

_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|/\d)")
_IPV6 = re.compile(
    r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:]|/\d)"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _ipv6(m: re.Match[str]) -> str:
    try:
        socket.inet_pton(socket.AF_INET6, m.group(0))
    except OSError:
        return m.group(0)  # a time of day or similar, not an address
    return "{ip}"


def scrub(text: str) -> str:
    text = _IPV4.sub("{ip}", text)
    if ":" in text:
        text = _IPV6.sub(_ipv6, text)
    if "@" in text:
        text = _EMAIL.sub("{email}", text)
    return text


class ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter(FORMAT))
    log_limits.install(handler)  # a flood of one message writes a few lines and a count
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
