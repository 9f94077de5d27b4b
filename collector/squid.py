"""Squid's native access-log format -> a raw access record.

`time.ms elapsed client code/status bytes method URL user hierarchy/peer type`, the default
`logformat squid` of https://wiki.squid-cache.org/Features/LogFormat (`elapsed` is right-aligned:
several spaces may come before it). `time` is epoch seconds with milliseconds, `elapsed` the
milliseconds the transaction took. The URL is absolute (a forward proxy): its host becomes the
record's host (a CONNECT tunnel names only `host:port`). The user (`-` when none) is read as
`user_id`, pseudonymized.
"""

from __future__ import annotations

import re
from typing import Any

SQUID = re.compile(
    r"^(?P<time>\d{9,11}\.\d{3}) +(?P<elapsed>\d+) (?P<client>\S+) "
    r"(?P<code>[A-Z_]+)/(?P<status>\d{3}) (?P<bytes>\d+) (?P<method>[A-Za-z_-]+) (?P<url>\S+) "
    r"(?P<user>\S+) (?P<hierarchy>\S+) (?P<type>\S+)\s*$"
)


def parse_squid(m: re.Match[str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ip": m.group("client"),
        "time": int(float(m.group("time")) * 1000),
        "method": m.group("method"),
        "bytes": int(m.group("bytes")),
        "duration_ms": float(m.group("elapsed")),
    }
    if record["method"] == "CONNECT":  # a tunnel: `host:port`, no path
        record["host"] = m.group("url").rpartition(":")[0] or m.group("url")
    else:
        record["path"] = m.group("url")
    status = int(m.group("status"))
    if status:
        record["status"] = status
    if m.group("user") != "-":
        record["user_id"] = m.group("user")
    return record
