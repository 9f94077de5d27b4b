"""Amazon S3 server access-log records -> raw access records.

`bucket_owner bucket [time] remote_ip requester request_id operation key "request_uri" status
error_code bytes_sent object_size total_time turnaround_time "referer" "user_agent" ...`, as
documented at https://docs.aws.amazon.com/AmazonS3/latest/userguide/LogFormat.html
`total_time` (ms) becomes `duration_ms`; the requester (a canonical user id or an ARN, `-` when
anonymous) is read as `user_id`, pseudonymized; the bucket is the host.
"""

from __future__ import annotations

import re
from typing import Any

from collector.combined import parse_clf_time, split_request, unescape

_QUOTED = r'(?:[^"\\]|\\.)*'
S3 = re.compile(
    r"^(?P<owner>[0-9a-f]{64}|-) (?P<bucket>\S+) \[(?P<time>[^\]]+)\] (?P<ip>\S+) "
    r"(?P<requester>\S+) (?P<request_id>\S+) (?P<operation>\S+) (?P<key>\S+) "
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{3}}|-) (?P<error>\S+) (?P<sent>\d+|-) '
    rf'(?P<size>\d+|-) (?P<total>\d+|-) (?P<turnaround>\d+|-) "(?P<referrer>{_QUOTED})" '
    rf'"(?P<agent>{_QUOTED})"(?: .*)?$'
)


def parse_s3(m: re.Match[str]) -> dict[str, Any]:
    record: dict[str, Any] = {"ip": m.group("ip"), "time": parse_clf_time(m.group("time"))}
    split_request(record, unescape(m.group("request")))
    record["host"] = m.group("bucket")
    if m.group("status") != "-":
        record["status"] = int(m.group("status"))
    if m.group("sent") != "-":
        record["bytes"] = int(m.group("sent"))
    if m.group("total") != "-":
        record["duration_ms"] = float(m.group("total"))
    for group, field in (
        ("referrer", "referrer"),
        ("agent", "user_agent"),
        ("requester", "user_id"),
    ):
        value = m.group(group)
        if value and value != "-":
            record[field] = unescape(value)
    return record
