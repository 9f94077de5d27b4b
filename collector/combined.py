"""Apache/Nginx *combined* log lines -> the same raw record shape as JSON input.

The line is split with one compiled regex; the timestamp is parsed by hand (strptime is slow and
depends on the locale). The remote user (`%u`) maps to `user_id`, so it is pseudonymized like any
other user id, never stored raw. A line cut short inside its final quoted user agent (a writer's
line-length limit) still parses: everything it says is intact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from anonymizer.errors import RecordInvalid

_LINE = re.compile(
    r"^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"?)?\s*$'
)
_TIME = re.compile(r"^(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


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


def parse_combined(line: str) -> dict[str, Any]:
    """One log line as a raw record dict (validated later like any JSON record)."""
    m = _LINE.match(line)
    if not m:
        raise RecordInvalid("line", "not an Apache/Nginx combined log line")
    request = m.group("request")
    parts = request.split(" ")
    if len(parts) == 3:
        method, target = parts[0], parts[1]
    elif len(parts) == 2:
        method, target = parts
    else:
        method, target = "", ""
    record: dict[str, Any] = {"ip": m.group("ip"), "time": parse_clf_time(m.group("time"))}
    if method:
        record["method"] = method
        record["path"] = target
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
        record["referrer"] = referrer
    agent = m.group("agent")
    if agent and agent != "-":
        record["user_agent"] = agent
    return record
