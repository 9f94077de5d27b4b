"""W3C extended log lines (IIS, CloudFront and other writers of `#Fields:` headers).

A W3C file declares its columns in a `#Fields:` directive; each data line after it has exactly
those columns, separated by spaces (IIS) or tabs (CloudFront). The directive is state: it holds
for the lines after it in the same request body. A CloudFront line without its header (a
shipper that drops `#` lines) is read with CloudFront's documented default columns
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html).

Units and encodings differ by writer: IIS writes `time-taken` in milliseconds and a `+` for each
space of the user agent; CloudFront writes `time-taken` in seconds and percent-encodes. `date`
and `time` are UTC.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from anonymizer.errors import RecordInvalid
from collector.forwarded import TrustedProxies, client_address, x_forwarded_for

CLOUDFRONT_FIELDS = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
]
MAX_FIELDS = 128


class W3cFields:
    """The columns one `#Fields:` directive declared, resolved to indexes once."""

    __slots__ = ("cloudfront", "count", "index")

    def __init__(self, names: list[str]) -> None:
        self.count = len(names)
        self.index = {name.lower(): i for i, name in enumerate(names)}
        self.cloudfront = "x-edge-location" in self.index

    @classmethod
    def from_directive(cls, line: str) -> W3cFields:
        names = line[len("#Fields:") :].split()
        if not names or len(names) > MAX_FIELDS:
            raise RecordInvalid("line", f"#Fields: must name 1 to {MAX_FIELDS} columns")
        return cls(names)


CLOUDFRONT = W3cFields(CLOUDFRONT_FIELDS)


def _value(cols: list[str], fields: W3cFields, *names: str) -> str:
    for name in names:
        i = fields.index.get(name)
        if i is not None:
            value = cols[i]
            if value and value != "-":
                return value
    return ""


def parse_w3c(line: str, fields: W3cFields, trusted: TrustedProxies) -> dict[str, Any]:
    cols = line.split("\t") if "\t" in line else line.split(" ")
    if len(cols) != fields.count:
        raise RecordInvalid(
            "line", f"W3C line has {len(cols)} columns; its #Fields: names {fields.count}"
        )
    cloudfront = fields.cloudfront
    decode = unquote if cloudfront else _plus
    record: dict[str, Any] = {}
    date, time = _value(cols, fields, "date"), _value(cols, fields, "time")
    if date and time:
        record["time"] = f"{date}T{time}Z"
    peer = _value(cols, fields, "c-ip")
    if peer:
        chain = x_forwarded_for(
            decode(_value(cols, fields, "x-forwarded-for", "cs(x-forwarded-for)"))
        )
        record["ip"] = client_address(peer, chain, trusted)
    method = _value(cols, fields, "cs-method")
    if method:
        record["method"] = method
    path = _value(cols, fields, "cs-uri-stem", "cs-uri")
    if path:
        query = _value(cols, fields, "cs-uri-query")
        record["path"] = f"{path}?{query}" if query else path
    host = _value(cols, fields, "x-host-header", "cs-host", "cs(host)", "s-computername")
    if host:
        record["host"] = host
    status = _value(cols, fields, "sc-status")
    if status:
        record["status"] = _whole(status, "status")
    size = _value(cols, fields, "sc-bytes")
    if size:
        record["bytes"] = _whole(size, "bytes")
    taken = _value(cols, fields, "time-taken")
    if taken:
        try:
            number = float(taken)
        except ValueError:
            raise RecordInvalid("duration_ms", "time-taken is not a number") from None
        record["duration_ms"] = number * 1000.0 if cloudfront else number
    agent = _value(cols, fields, "cs(user-agent)")
    if agent:
        record["user_agent"] = decode(agent)
    referrer = _value(cols, fields, "cs(referer)", "cs(referrer)")
    if referrer:
        record["referrer"] = decode(referrer)
    user = _value(cols, fields, "cs-username")
    if user:
        record["user_id"] = user
    return record


def _plus(value: str) -> str:
    """IIS writes each space of a header value as `+`."""
    return value.replace("+", " ")


def _whole(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise RecordInvalid(name, "must be a whole number")
    return int(text)
