"""Envoy's default access-log format (text) -> a raw access record.

`[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%"
"%UPSTREAM_HOST%"`, as documented at
https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage

The default format carries no downstream address: the client is taken from X-Forwarded-For
(per `[ingest] trusted_proxies`, every hop treated as seen by a trusted proxy), and a line
without one has no client and is refused by name. `%DURATION%` is milliseconds.
"""

from __future__ import annotations

import re
from typing import Any

from anonymizer.errors import RecordInvalid
from collector.combined import split_request
from collector.forwarded import TrustedProxies, client_address, x_forwarded_for

_QUOTED = r'(?:[^"\\]|\\.)*'
ENVOY = re.compile(
    r"^\[(?P<time>\d{4}-\d\d-\d\dT[0-9:.]+Z)\] "
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{1,3}}) (?P<flags>\S+) (?P<received>\d+|-) '
    r"(?P<sent>\d+|-) (?P<duration>\d+|-) (?P<upstream_time>\S+) "
    rf'"(?P<xff>{_QUOTED})" "(?P<agent>{_QUOTED})" "(?P<request_id>{_QUOTED})" '
    rf'"(?P<authority>{_QUOTED})"(?: .*)?$'
)


def parse_envoy(m: re.Match[str], trusted: TrustedProxies) -> dict[str, Any]:
    chain = x_forwarded_for(m.group("xff"))
    if not chain:
        raise RecordInvalid(
            "ip", "no client address: Envoy's default format has only X-Forwarded-For"
        )
    record: dict[str, Any] = {"time": m.group("time")}
    # the walk starts as if a trusted proxy saw the rightmost hop: the rightmost entry is trusted
    # only when it is a proxy's own address, and then the walk goes on to its left
    record["ip"] = client_address(chain[-1], chain[:-1], trusted)
    split_request(record, m.group("request"))
    status = int(m.group("status"))
    if status:
        record["status"] = status
    if m.group("sent") != "-":
        record["bytes"] = int(m.group("sent"))
    if m.group("duration") != "-":
        record["duration_ms"] = float(m.group("duration"))
    agent = m.group("agent")
    if agent and agent != "-":
        record["user_agent"] = agent
    authority = m.group("authority")
    if authority and authority != "-":
        record["host"] = authority
    return record
