"""Logging that cannot leak: every formatted line (message, traceback and all) is scrubbed of IP
addresses, email addresses, secrets and request header values before it is written.

Our own log calls name routes, counts and key ids only; this is the net under the libraries
that do not. aiohttp logs "Error handling request from <client address>" on a malformed request
with the parser's exception, whose text quotes the offending raw line (`b'Authorization: Bearer
tck_...'`, `b'Cookie: sid=...'`), and exception texts elsewhere may quote input. So:
- an HTTP parser exception is rendered as its type, status and the first words of its message,
  never the request bytes it quotes;
- everything else is scrubbed by class: bytes literals (request data, never our own text),
  credentials after an auth scheme (`Bearer`, `Basic`, ...), API keys (`tck_...`), JWTs, values
  of secret-bearing headers and `name=value` pairs, any `Name-With-Hyphens: value` header line,
  query strings, IPv4/IPv6 addresses (an IPv6 candidate is confirmed by the address parser and
  must stand alone: `DB::Exception` and `std::vector` are text) and email addresses.
"""

from __future__ import annotations

import logging
import re
import socket
import traceback
from types import TracebackType

from aiohttp.http_exceptions import HttpProcessingError

from collector import log_limits

REDACTED = "{redacted}"
# request data echoed by a parser: b'...' / b"..." with escapes
_BYTES = re.compile(r"""\bb'(?:[^'\\\n]|\\.)*'|\bb"(?:[^"\\\n]|\\.)*\"""")
# an auth scheme as HTTP writes it, then a credential-sized word (`basic auth` is text)
_SCHEME = re.compile(
    r"\b(Bearer|bearer|BEARER|Basic|BASIC|Digest|Negotiate|NTLM)([ \t]+)[A-Za-z0-9._~+/=:-]{8,}"
)
_API_KEY = re.compile(r"\btck_[A-Za-z0-9_-]*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")
_SECRET_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|"
    r"x-auth-token|x-csrf-token|x-user-id|x-forwarded-for|x-real-ip|forwarded|referer|"
    r"idempotency-key|expect|user-agent|x-[a-z0-9-]+)([ \t]*:[ \t]*)[^\n'\"]*"
)
_HEADER_LINE = re.compile(r"(?m)^([ \t]*[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+:)[ \t]*\S[^\n]*$")
_SECRET_PAIR = re.compile(
    r"(?i)\b(token|access_token|id_token|refresh_token|api_?key|key|password|passwd|pwd|"
    r"secret|session|session_?id|sid|auth|user_?id|uid|email)=[^\s&;,'\"]*"
)
_QUERY = re.compile(r"\?[^\s'\"?#]*=[^\s'\"]*")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|/\d)")
# candidates only: confirmed by inet_pton, and never part of a longer word (`DB::Exception`)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:]|/\d|\.\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _ipv6(m: re.Match[str]) -> str:
    candidate = m.group(0)
    if candidate.count(":") < 2 or candidate.strip(":") == "":
        return candidate  # `::` alone, a separator
    try:
        socket.inet_pton(socket.AF_INET6, candidate)
    except OSError:
        return candidate  # a time of day or similar, not an address
    return "{ip}"


def scrub(text: str) -> str:
    text = _BYTES.sub("b'" + REDACTED + "'", text)
    text = _SCHEME.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    if "tck_" in text:
        text = _API_KEY.sub("{key}", text)
    if "eyJ" in text:
        text = _JWT.sub("{token}", text)
    if ":" in text:
        text = _SECRET_HEADER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        text = _HEADER_LINE.sub(lambda m: m.group(1) + " " + REDACTED, text)
    if "=" in text:
        text = _SECRET_PAIR.sub(lambda m: m.group(1) + "=" + REDACTED, text)
        if "?" in text:
            text = _QUERY.sub("?{query}", text)
    text = _IPV4.sub("{ip}", text)
    if ":" in text:
        text = _IPV6.sub(_ipv6, text)
    if "@" in text:
        text = _EMAIL.sub("{email}", text)
    return text


def _parser_error_summary(e: HttpProcessingError) -> str:
    """`BadHttpMessage: 400, Invalid header value char`: what went wrong, none of the bytes."""
    first = str(e.message).strip().split("\n", 1)[0]
    first = re.split(r"""\bb['"]|(?:^|\s)['"]|"|:\s*$""", first, maxsplit=1)[0].strip(" :")
    return f"{type(e).__name__}: {e.code}, {first or 'malformed request'}"


class ScrubbingFormatter(logging.Formatter):
    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        exc = ei[1]
        if isinstance(exc, HttpProcessingError):
            frames = "".join(traceback.format_tb(ei[2]))
            return f"Traceback (most recent call last):\n{frames}{_parser_error_summary(exc)}"
        return super().formatException(ei)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter(FORMAT))
    log_limits.install(handler)  # a flood of one message writes a few lines and a count
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
