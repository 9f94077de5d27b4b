"""Declared access-log formats: an nginx `log_format` string or an Apache `LogFormat` string,
compiled once into one linear regex whose groups map onto record fields.

A format string is a sequence of literal text and fields (`$remote_addr`, `${status}`; `%h`,
`%>s`, `%{User-Agent}i`). Each field's pattern excludes the first character of the literal that
follows it (`"`, `]`, a space, a tab), so the regex never re-splits a field by backtracking and
runs in time linear in the line; two fields with no literal between them cannot be told apart
and are refused when the format is declared. Fields we have no use for are matched and dropped.

Request times map to `duration_ms` in their unit: nginx `$request_time` (seconds, ms
resolution); Apache `%D` (microseconds), `%T` (seconds), `%{ms}T`, `%{us}T`, `%{s}T`.
The forwarded chain (`$http_x_forwarded_for`, `%{X-Forwarded-For}i`, `$http_forwarded`,
`%{Forwarded}i`) gives the client per `[ingest] trusted_proxies` (collector/forwarded.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from anonymizer.errors import RecordInvalid
from collector.combined import host_of, parse_clf_time, split_request
from collector.forwarded import TrustedProxies, client_address, forwarded, x_forwarded_for

MAX_FORMAT_CHARS = 2048
MAX_FIELDS = 64

# nginx variable -> role
NGINX_ROLES = {
    "remote_addr": "ip",
    "remote_user": "user",
    "time_local": "time_clf",
    "time_iso8601": "time_iso",
    "msec": "time_epoch",
    "request": "request",
    "request_method": "method",
    "request_uri": "path",
    "uri": "path_only",
    "document_uri": "path_only",
    "args": "query",
    "query_string": "query",
    "status": "status",
    "body_bytes_sent": "bytes",
    "bytes_sent": "bytes_total",
    "http_referer": "referrer",
    "http_user_agent": "agent",
    "http_x_forwarded_for": "xff",
    "http_forwarded": "forwarded",
    "host": "host",
    "http_host": "host",
    "server_name": "host_fallback",
    "request_time": "duration_s",
}
# Apache directive letter (with its {argument}, lower-cased) -> role
APACHE_ROLES = {
    "h": "ip",
    "a": "ip",
    "{c}a": "ip",
    "u": "user",
    "t": "time_clf_bracketed",
    "r": "request",
    "m": "method",
    "U": "path_only",
    "q": "query",
    "s": "status",
    "b": "bytes",
    "B": "bytes",
    "O": "bytes_total",
    "{referer}i": "referrer",
    "{user-agent}i": "agent",
    "{x-forwarded-for}i": "xff",
    "{forwarded}i": "forwarded",
    "{host}i": "host",
    "v": "host",
    "V": "host",
    "D": "duration_us",
    "T": "duration_s",
    "{s}T": "duration_s",
    "{ms}T": "duration_ms",
    "{us}T": "duration_us",
}
_NGINX_TOKEN = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")
_APACHE_TOKEN = re.compile(r"%([<>]?)(?:!?[0-9,]+)?(?:\{([^}]{0,64})\})?([A-Za-z%])")
_QUOTED = r'(?:[^"\\]|\\.)*'
_TIME_LOCAL = r"[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}"
_NUMBER = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")
_DIGITS = re.compile(r"[0-9]{1,20}")


class FormatError(ValueError):
    """A format string we cannot compile; the message names the reason, not the string."""


@dataclass(frozen=True, slots=True)
class LogFormat:
    """A compiled declared format: `name` (nginx or apache) for error messages."""

    name: str
    regex: re.Pattern[str]
    roles: tuple[str, ...]  # group i+1 -> role ("" for fields we drop)

    def parse(self, line: str, trusted: TrustedProxies) -> dict[str, Any]:
        m = self.regex.match(line)
        if m is None:
            raise RecordInvalid("line", f"does not match the declared {self.name} format")
        values: dict[str, str] = {}
        for role, value in zip(self.roles, m.groups(), strict=True):
            if role and value and value != "-" and role not in values:
                values[role] = value
        return record_from_roles(values, trusted)


def compile_nginx(text: str) -> LogFormat:
    """An nginx `log_format` body: `$remote_addr - $remote_user [$time_local] "$request" ...`;
    pasted with its configuration quotes (`'...' '...'`) it is joined first."""
    text = _unquote_config(text)
    parts: list[tuple[str, str]] = []  # ("lit", text) | ("field", role)
    pos = 0
    for m in _NGINX_TOKEN.finditer(text):
        if m.start() > pos:
            parts.append(("lit", text[pos : m.start()]))
        name = m.group(1) or m.group(2)
        parts.append(("field", NGINX_ROLES.get(name, "")))
        pos = m.end()
    if pos < len(text):
        parts.append(("lit", text[pos:]))
    return _compile("nginx", parts)


def compile_apache(text: str) -> LogFormat:
    """An Apache `LogFormat` string: `%h %l %u %t \\"%r\\" %>s %b`; `\\"` and `\\t` as in the
    configuration file are read as `"` and a tab."""
    text = _check(text).replace('\\"', '"').replace("\\t", "\t")
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in _APACHE_TOKEN.finditer(text):
        if m.start() > pos:
            parts.append(("lit", text[pos : m.start()]))
        argument, letter = m.group(2), m.group(3)
        if letter == "%":
            parts.append(("lit", "%"))
        else:
            key = f"{{{argument.lower()}}}{letter}" if argument is not None else letter
            if argument is not None and letter == "T":
                key = f"{{{argument}}}T"
            parts.append(("field", APACHE_ROLES.get(key, "")))
        pos = m.end()
    if pos < len(text):
        parts.append(("lit", text[pos:]))
    return _compile("apache", parts)


def _check(text: str) -> str:
    if not text.strip():
        raise FormatError("the format is empty")
    if len(text) > MAX_FORMAT_CHARS:
        raise FormatError(f"the format is longer than {MAX_FORMAT_CHARS} characters")
    if "\n" in text or "\r" in text:
        raise FormatError("the format must be one line")
    return text


def _unquote_config(text: str) -> str:
    text = _check(text).strip().rstrip(";").strip()
    if text[:1] in ("'", '"'):
        pieces = re.findall(r"'([^']*)'|\"([^\"]*)\"", text)
        joined = "".join(a or b for a, b in pieces)
        if joined:
            return joined
    return text


def _compile(name: str, parts: list[tuple[str, str]]) -> LogFormat:
    merged: list[tuple[str, str]] = []
    for kind, value in parts:  # join adjacent literals
        if kind == "lit" and merged and merged[-1][0] == "lit":
            merged[-1] = ("lit", merged[-1][1] + value)
        else:
            merged.append((kind, value))
    fields = [p for p in merged if p[0] == "field"]
    if not fields:
        raise FormatError(f"the {name} format names no fields")
    if len(fields) > MAX_FIELDS:
        raise FormatError(f"the {name} format names more than {MAX_FIELDS} fields")
    pattern = ["^"]
    roles: list[str] = []
    for i, (kind, value) in enumerate(merged):
        if kind == "lit":
            pattern.append(re.escape(value))
            continue
        before = merged[i - 1][1] if i > 0 and merged[i - 1][0] == "lit" else ""
        after = merged[i + 1] if i + 1 < len(merged) else None
        if after is not None and after[0] == "field":
            raise FormatError(f"the {name} format has two fields with nothing between them")
        stop = after[1][0] if after is not None else ""
        pattern.append(f"({_field_pattern(value, before, stop)})")
        roles.append(value)
    pattern.append(r"\s*$")
    return LogFormat(name, re.compile("".join(pattern)), tuple(roles))


def _field_pattern(role: str, before: str, stop: str) -> str:
    if role == "time_clf_bracketed":
        return r"\[[^\]\n]*\]"
    if role == "time_clf" and stop != "]":
        return _TIME_LOCAL
    if stop == '"' and before.endswith('"'):
        return _QUOTED
    if not stop:
        return ".*"
    return f"[^{re.escape(stop)}\n]*"


def record_from_roles(values: dict[str, str], trusted: TrustedProxies) -> dict[str, Any]:
    """Field values by role (absent: `-` or empty) -> a raw access record."""
    record: dict[str, Any] = {}
    get = values.get
    if (t := get("time_clf_bracketed")) is not None:
        record["time"] = parse_clf_time(t.strip("[]"))
    elif (t := get("time_clf")) is not None:
        record["time"] = parse_clf_time(t)
    elif (t := get("time_iso")) is not None:
        record["time"] = t
    elif (t := get("time_epoch")) is not None:
        if not _NUMBER.fullmatch(t):
            raise RecordInvalid("time", "not epoch seconds")
        record["time"] = int(float(t) * 1000)
    peer = get("ip")
    if peer is not None:
        chain = x_forwarded_for(get("xff", "")) or forwarded(get("forwarded", ""))
        record["ip"] = client_address(peer, chain, trusted)
    if (r := get("request")) is not None:
        split_request(record, r)
    if (m := get("method")) is not None:
        record["method"] = m
    path = get("path")
    if path is None and (p := get("path_only")) is not None:
        q = get("query", "").removeprefix("?")
        path = f"{p}?{q}" if q else p
    if path is not None:
        record["path"] = path
    if (s := get("status")) is not None:
        if not _DIGITS.fullmatch(s):
            raise RecordInvalid("status", "must be a whole number")
        record["status"] = int(s)
    size = get("bytes", get("bytes_total"))
    if size is not None:
        if not _DIGITS.fullmatch(size):
            raise RecordInvalid("bytes", "must be a whole number")
        record["bytes"] = int(size)
    for role, name in (("referrer", "referrer"), ("agent", "user_agent"), ("user", "user_id")):
        if (v := get(role)) is not None:
            record[name] = v
    host = get("host", get("host_fallback"))
    if host is not None:
        record["host"] = host_of(host)
    # the most precise of the request times the line has
    for role, factor in (("duration_us", 0.001), ("duration_ms", 1.0), ("duration_s", 1000.0)):
        if (d := get(role)) is not None:
            if not _NUMBER.fullmatch(d):
                raise RecordInvalid("duration_ms", "the request time is not a number")
            record["duration_ms"] = float(d) * factor
            break
    return record
