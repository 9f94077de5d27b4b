"""`text/plain` access logs: each line's format is detected on its own, or declared.

Detection looks at the line's first characters to pick the likely format, tries it, and on a
mismatch tries every other text format once; a line none of them reads is a per-record error
naming the formats tried (never the line). Formats, in the order tried:

| name | what |
| --- | --- |
| `combined` | Apache/nginx common, combined, `vhost_combined`, nginx `main`, appended fields |
| `alb` | AWS Application Load Balancer |
| `elb` | AWS Classic Load Balancer |
| `envoy` | Envoy's default text format |
| `haproxy` | HAProxy's HTTP log (`option httplog`), with or without its syslog header |
| `s3` | Amazon S3 server access logs |
| `squid` | Squid's native access log |
| `cloudfront` | CloudFront (tab-separated; its `#Fields:` header optional) |
| `w3c` | W3C extended / IIS, columns from the body's `#Fields:` directive |
| `json` | JSON lines of Caddy, Traefik, Envoy (`json_format`) and nginx (`escape=json`) |

W3C directives (`#Version:`, `#Fields:`...) are not records: they are skipped, and `#Fields:`
holds for the lines after it in the same body. A declared format (a tenant's `nginx_log_format`
/ `apache_log_format`, or the request's `nginx_format=` / `apache_format=` / `format=`) is the
only one tried. The request's `service` and `host` are set on every record that has none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from anonymizer.errors import RecordInvalid
from collector.combined import combined_record, match_combined
from collector.elb import ALB, ELB, parse_alb, parse_elb
from collector.envoy import ENVOY, parse_envoy
from collector.forwarded import DEFAULT_PROXIES, TrustedProxies
from collector.haproxy import match_haproxy, parse_haproxy
from collector.log_format import LogFormat
from collector.proxy_json import parse_proxy_json
from collector.s3_access import S3, parse_s3
from collector.squid import SQUID, parse_squid
from collector.w3c import CLOUDFRONT, W3cFields, parse_w3c

BUILTIN = (
    "combined",
    "alb",
    "elb",
    "envoy",
    "haproxy",
    "s3",
    "squid",
    "cloudfront",
    "w3c",
    "json",
)
NAMES = ("auto", *BUILTIN)


class Skipped:
    """Stands in a record list for a line that is not a record (a W3C directive, a blank
    line): it keeps its index, and is neither accepted nor rejected."""

    __slots__ = ()


SKIPPED = Skipped()


@dataclass(frozen=True, slots=True)
class TextOptions:
    """What a request says about its text lines."""

    trusted: TrustedProxies = DEFAULT_PROXIES
    format: str = "auto"  # one of NAMES
    declared: LogFormat | None = None  # wins over `format`
    service: str = ""
    host: str = ""


class _State:
    """Per body: the W3C columns declared so far."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: W3cFields | None = None


Parser = Callable[[str, _State, TrustedProxies], "dict[str, Any] | None"]


def _combined(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    m = match_combined(line)
    return combined_record(m, trusted) if m else None


def _alb(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    m = ALB.match(line)
    return parse_alb(m) if m else None


def _elb(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    m = ELB.match(line)
    return parse_elb(m) if m else None


def _envoy(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    m = ENVOY.match(line)
    return parse_envoy(m, trusted) if m else None


def _haproxy(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    m = match_haproxy(line)
    return parse_haproxy(m) if m else None


def _s3(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    m = S3.match(line)
    return parse_s3(m) if m else None


def _squid(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    m = SQUID.match(line)
    return parse_squid(m) if m else None


def _cloudfront(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    if "\t" not in line or not line[:4].isdigit():
        return None
    fields = state.fields if state.fields is not None and state.fields.cloudfront else CLOUDFRONT
    if line.count("\t") + 1 != fields.count:
        return None
    return parse_w3c(line, fields, trusted)


def _w3c(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    fields = state.fields
    if fields is None or (line.count("\t") or line.count(" ")) + 1 != fields.count:
        return None  # not this body's W3C columns: another format may read it
    return parse_w3c(line, fields, trusted)


def _json(line: str, state: _State, trusted: TrustedProxies) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise RecordInvalid("line", "JSON line is not valid JSON") from None
    return parse_proxy_json(doc, trusted)


PARSERS: dict[str, Parser] = {
    "combined": _combined,
    "alb": _alb,
    "elb": _elb,
    "envoy": _envoy,
    "haproxy": _haproxy,
    "s3": _s3,
    "squid": _squid,
    "cloudfront": _cloudfront,
    "w3c": _w3c,
    "json": _json,
}


def _likely(line: str, state: _State) -> str:
    """The format a line's first characters point to."""
    c = line[:1]
    if c == "{":
        return "json"
    if state.fields is not None:
        return "w3c"
    if c == "[":
        return "envoy"
    if c.isdigit() and line[4:5] == "-":
        return "cloudfront" if "\t" in line else "elb"
    if line.startswith(("http ", "https ", "h2 ", "grpcs ", "ws ", "wss ")):
        return "alb"
    return "combined"


class LineReader:
    """Lines -> items, in order, with the W3C state of one body."""

    def __init__(self, options: TextOptions) -> None:
        self.options = options
        self.state = _State()
        only = options.format if options.format != "auto" else None
        self.only = only
        self._auto = options.declared is None and only is None
        self.defaults = bool(options.service or options.host)

    def record(self, line: str) -> dict[str, Any] | Skipped:
        c = line[:1]
        if c == "#":
            if line.startswith("#Fields:"):
                self.state.fields = W3cFields.from_directive(line)
            return SKIPPED
        if (not c or c.isspace()) and not line.strip():  # a blank line is no record
            return SKIPPED
        options = self.options
        record: dict[str, Any] | None = None
        fast = self._auto and self.state.fields is None
        if fast:  # the common case, a combined-family line: tried first, inline
            m = match_combined(line)
            if m is not None:
                record = combined_record(m, options.trusted)
        if record is None:
            record = self._parse(line, combined_tried=fast)
        if self.defaults:
            if options.service and "service" not in record:
                record["service"] = options.service
            if options.host and not record.get("host"):
                record["host"] = options.host
        return record

    def _parse(self, line: str, combined_tried: bool) -> dict[str, Any]:
        options = self.options
        trusted = options.trusted
        if options.declared is not None:
            return options.declared.parse(line, trusted)
        if self.only is not None:
            record = PARSERS[self.only](line, self.state, trusted)
            if record is None:
                raise RecordInvalid("line", f"not a line of the {self.only} format")
            return record
        first = _likely(line, self.state)
        for name in (first, *(n for n in BUILTIN if n != first)):
            if name == "combined" and combined_tried:
                continue
            record = PARSERS[name](line, self.state, trusted)
            if record is not None:
                return record
        raise RecordInvalid("line", self._tried())

    def _tried(self) -> str:
        w3c = "w3c" if self.state.fields is not None else "w3c (no #Fields: header seen)"
        names = [n if n != "w3c" else w3c for n in BUILTIN]
        return "not a line of any known access-log format (tried: " + ", ".join(names) + ")"
