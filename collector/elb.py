"""AWS load balancer access-log entries -> raw access records.

- Application Load Balancer (`http|https|h2|grpcs|ws|wss <time> app/<name>/<id> <client>:<port>
  <target>:<port> <request_processing_time> <target_processing_time> <response_processing_time>
  <elb_status_code> <target_status_code> <received_bytes> <sent_bytes> "<request>" "<user_agent>"
  ...`), fields as documented at
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-access-logs.html
- Classic Load Balancer (`<time> <name> <client>:<port> <backend>:<port> <three times> <elb status>
  <backend status> <received> <sent> "<request>" "<user_agent>" <cipher> <protocol>`), per
  https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/access-log-collection.html

The three processing times (seconds, -1 when the request never reached a target) add up to the
load balancer's view of the request's duration. A TCP listener's entry (`"- - - "`) is not an
HTTP request and is refused as such. Both regexes are linear: every field excludes its separator.
"""

from __future__ import annotations

import re
from typing import Any

from anonymizer.errors import RecordInvalid
from collector.combined import split_request

_QUOTED = r'(?:[^"\\]|\\.)*'
_COMMON = (
    r"(?P<client>\S+?):(?P<cport>\d+|-) (?P<target>\S+) "
    r"(?P<t1>-?[0-9.]+) (?P<t2>-?[0-9.]+) (?P<t3>-?[0-9.]+) "
    r"(?P<status>\d{3}|-) (?P<tstatus>\S+) (?P<received>\d+|-) (?P<sent>\d+|-) "
    rf'"(?P<request>{_QUOTED})" "(?P<agent>{_QUOTED})"'
)
ALB = re.compile(
    r"^(?:http|https|h2|grpcs|ws|wss) (?P<time>\d{4}-\d\d-\d\dT[0-9:.]+Z) (?P<elb>\S+) "
    + _COMMON
    + r"(?: .*)?$"
)
ELB = re.compile(r"^(?P<time>\d{4}-\d\d-\d\dT[0-9:.]+Z) (?P<elb>\S+) " + _COMMON + r"(?: .*)?$")


def parse_alb(m: re.Match[str]) -> dict[str, Any]:
    return _record(m)


def parse_elb(m: re.Match[str]) -> dict[str, Any]:
    return _record(m)


def _record(m: re.Match[str]) -> dict[str, Any]:
    record: dict[str, Any] = {"ip": m.group("client"), "time": m.group("time")}
    split_request(record, m.group("request"))
    if "method" not in record:
        raise RecordInvalid("line", "not an HTTP request (a TCP listener entry)")
    status = m.group("status")
    if status != "-":
        record["status"] = int(status)
    sent = m.group("sent")
    if sent != "-":
        record["bytes"] = int(sent)
    agent = m.group("agent")
    if agent and agent != "-":
        record["user_agent"] = agent
    times = [m.group("t1"), m.group("t2"), m.group("t3")]
    try:
        seconds = [float(t) for t in times]
    except ValueError:
        seconds = [-1.0]
    if all(s >= 0 for s in seconds):
        record["duration_ms"] = sum(seconds) * 1000.0
    return record
