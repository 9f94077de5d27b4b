"""HAProxy's HTTP log format (`option httplog`) -> a raw access record.

`[syslog header] haproxy[pid]: client:port [accept_date] frontend backend/server
TR/Tw/Tc/Tr/Ta status bytes_read req_cookie res_cookie termination actconn/feconn/beconn/srv_conn/
retries srv_queue/backend_queue [{captured request headers}] [{captured response headers}]
"request"`, as documented in section 8.2.3 of
https://docs.haproxy.org/2.8/configuration.html#8.2.3

`accept_date` has milliseconds and no UTC offset (it is the proxy's local time): it is read as
UTC. `Ta` (total active time, ms) becomes `duration_ms`. A syslog header in front (`Feb  6
12:14:14 host haproxy[14389]: `) is skipped by finding `]: `, not by a pattern.
"""

from __future__ import annotations

import re
from typing import Any

from collector.combined import parse_clf_time, split_request, unescape

_QUOTED = r'(?:[^"\\]|\\.)*'
# no `^`: matched from a position (after a syslog header), where `^` would never match
HAPROXY = re.compile(
    r"(?P<client>\S+):(?P<port>\d+) \[(?P<date>\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d)"
    r"(?:\.(?P<ms>\d{3}))?\] (?P<frontend>\S+) (?P<backend>\S+) "
    r"(?P<timers>[-+0-9]+/[-+0-9]+/[-+0-9]+/[-+0-9]+/(?P<ta>[-+0-9]+)) "
    r"(?P<status>-?\d{1,3}) (?P<bytes>\+?\d+) \S+ \S+ \S+ \S+ \S+"
    r'(?: \{[^}]*\}){0,2} "(?P<request>' + _QUOTED + r')"\s*$'
)


def match_haproxy(line: str) -> re.Match[str] | None:
    start = line.find("]: ", 0, 256) if not line[:1].isdigit() else -1
    return HAPROXY.match(line, start + 3 if start >= 0 else 0)


def parse_haproxy(m: re.Match[str]) -> dict[str, Any]:
    time_ms = parse_clf_time(m.group("date") + " +0000") + int(m.group("ms") or 0)
    record: dict[str, Any] = {"ip": m.group("client"), "time": time_ms}
    split_request(record, unescape(m.group("request")))
    status = int(m.group("status"))
    if status > 0:
        record["status"] = status
    record["bytes"] = int(m.group("bytes").lstrip("+"))
    ta = m.group("ta").lstrip("+")
    if ta.isdigit():
        record["duration_ms"] = float(ta)
    return record
