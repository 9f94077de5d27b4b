"""Apache/Nginx *combined* log lines (and their family) -> the same raw record shape as JSON.

One compiled regex splits the line; the timestamp is parsed by hand (strptime is slow and
depends on the locale). The family it reads, all with the same start:

- `common` (`%h %l %u %t "%r" %>s %b`) and `combined` (plus `"%{Referer}i" "%{User-Agent}i"`);
- `vhost_combined` (`%v:%p` first: the virtual host becomes `host`);
- anything appended after the user agent: nginx's default `main` format adds
  `"$http_x_forwarded_for"` (the client is then taken from that chain, see collector/forwarded),
  and other setups add request times: a decimal number (`$request_time`, seconds), `rt=`/
  `request_time=` (seconds) or `<n>ms` (Traefik's common format) becomes `duration_ms`. A bare
  whole number is ambiguous (Apache `%D` is microseconds, `%T` seconds, `%I` bytes) and is left
  alone: declare the format (`nginx_format=`/`apache_format=`) to have it read.

The remote user (`%u`) maps to `user_id`, so it is pseudonymized like any other user id, never
stored raw. A line cut short inside its final quoted user agent (a writer's line-length limit)
still parses: everything it says is intact. Every pattern is linear: each field's characters
exclude the character that ends it, so no field can be re-split by backtracking.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from anonymizer.errors import RecordInvalid
from collector.forwarded import DEFAULT_PROXIES, TrustedProxies, client_address, x_forwarded_for

_QUOTED = r'(?:[^"\\]|\\.)*'
_REST = (
    r"\[(?P<time>[^\]]+)\] "
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{3}}|-) (?P<bytes>\d+|-)'
    rf'(?: "(?P<referrer>{_QUOTED})" "(?P<agent>{_QUOTED})"?)?(?P<tail> .*)?\s*$'
)
_LINE = re.compile(r"^(?P<ip>\S+) \S+ (?P<user>\S+) " + _REST)
_VHOST_LINE = re.compile(r"^(?P<vhost>\S+) (?P<ip>\S+) \S+ (?P<user>\S+) " + _REST)
_TAIL_TOKEN = re.compile(rf'"({_QUOTED})"|(\S+)')
_SECONDS = re.compile(r"[0-9]{1,9}\.[0-9]{1,9}")
_MILLIS = re.compile(r"([0-9]{1,12})ms")
_ADDRESS_LIST = re.compile(r"[0-9A-Fa-f:.\[\]%, ]+|-|unknown")
_PORT = re.compile(r":[0-9]{1,5}$")
_TIME = re.compile(r"^(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_ESCAPE = re.compile(r'\\(x[0-9A-Fa-f]{2}|["\\])')
DURATION_KEYS = frozenset({"rt", "request_time", "req_time"})  # `key=seconds` in a tail


def parse_clf_time(text: str) -> int:
    """`17/May/2015:10:05:03 +0000` -> epoch milliseconds. The offset is applied to the epoch
    number, not to a datetime: year 1 with a `+` offset or year 9999 with a `-` one would step out
    of datetime's range. Whether the time is acceptable is the validator's call (its window)."""
    m = _TIME.match(text)
    if not m or m.group(2) not in _MONTHS:
        raise RecordInvalid("time", "not a combined-log time (dd/Mon/yyyy:HH:MM:SS +zzzz)")
    d, mon, y, hh, mm, ss, sign, oh, om = m.groups()
    if int(oh) > 23 or int(om) > 59:
        raise RecordInvalid("time", "not a valid UTC offset")
    try:
        dt = datetime(int(y), _MONTHS[mon], int(d), int(hh), int(mm), int(ss), tzinfo=UTC)
    except ValueError:
        raise RecordInvalid("time", "not a valid date") from None
    offset = int(oh) * 3600 + int(om) * 60
    seconds = int(dt.timestamp()) - (offset if sign == "+" else -offset)
    return seconds * 1000


def unescape(text: str) -> str:
    """nginx writes `"` and control bytes as `\\xHH`, Apache `"` as `\\"`: read them back (the
    check for a backslash keeps the common case free)."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "x" else m[1], text)


def split_request(record: dict[str, Any], request: str) -> None:
    """`GET /path HTTP/1.1` -> method and path (HTTP/0.9 has no version)."""
    parts = request.split(" ")
    if len(parts) in (2, 3) and parts[0] != "-":
        record["method"] = parts[0]
        record["path"] = parts[1]


def host_of(vhost: str) -> str:
    """`www.example.com:443` -> `www.example.com`; `[::1]:80` -> `[::1]`."""
    return _PORT.sub("", vhost) if vhost != "-" else ""


def parse_combined(line: str, trusted: TrustedProxies = DEFAULT_PROXIES) -> dict[str, Any]:
    """One log line as a raw record dict (validated later like any JSON record)."""
    m = match_combined(line)
    if m is None:
        raise RecordInvalid("line", "not an Apache/Nginx combined log line")
    return combined_record(m, trusted)


def match_combined(line: str) -> re.Match[str] | None:
    """The line split into the family's fields, or None when it is not of the family."""
    return _LINE.match(line) or _VHOST_LINE.match(line)


def combined_record(m: re.Match[str], trusted: TrustedProxies) -> dict[str, Any]:
    record: dict[str, Any] = {"ip": m.group("ip"), "time": parse_clf_time(m.group("time"))}
    split_request(record, unescape(m.group("request")))
    status = m.group("status")
    if status != "-":
        record["status"] = int(status)
    size = m.group("bytes")
    if size != "-":
        record["bytes"] = int(size)
    user = m.group("user")
    if user != "-":
        record["user_id"] = user
    referrer = m.group("referrer")
    if referrer and referrer != "-":
        record["referrer"] = unescape(referrer)
    agent = m.group("agent")
    if agent and agent != "-":
        record["user_agent"] = unescape(agent)
    if m.re is _VHOST_LINE:
        host = host_of(m.group("vhost"))
        if host:
            record["host"] = host
    tail = m.group("tail")
    if tail:
        _read_tail(record, tail, trusted)
    return record


def _read_tail(record: dict[str, Any], tail: str, trusted: TrustedProxies) -> None:
    """The fields appended after the user agent: a forwarded chain first (nginx `main`), then a
    request time: a named one (`rt=`, `request_time=`) over the first bare one."""
    tokens = _TAIL_TOKEN.findall(tail)
    quoted, _ = tokens[0] if tokens else ("", "")
    if quoted and _ADDRESS_LIST.fullmatch(quoted):
        record["ip"] = client_address(record["ip"], x_forwarded_for(quoted), trusted)
    bare_ms: float | None = None
    for _, bare in tokens:
        if not bare:
            continue
        if "=" in bare:
            key, _, value = bare.partition("=")
            value = value.strip('"')
            if key in DURATION_KEYS and _SECONDS.fullmatch(value):
                record["duration_ms"] = float(value) * 1000.0
                return
        elif bare_ms is None:
            if _SECONDS.fullmatch(bare):
                bare_ms = float(bare) * 1000.0
            elif (millis := _MILLIS.fullmatch(bare)) is not None:
                bare_ms = float(millis.group(1))
    if bare_ms is not None:
        record["duration_ms"] = bare_ms
