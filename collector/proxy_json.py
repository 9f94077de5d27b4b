"""JSON access-log lines written by proxies -> raw access records. Posted as `text/plain`
(they are the lines of a log file, like any other format here); the shape is recognised by its
keys:

- Caddy (`"logger": "http.log.access..."`, a `request` object with `client_ip`/`remote_ip`,
  `method`, `host`, `uri`, `headers`; `ts` epoch seconds, `duration` seconds, `size`, `status`):
  https://caddyserver.com/docs/caddyfile/directives/log
- Traefik (`ClientHost`, `RequestMethod`, `RequestPath`, `DownstreamStatus`, `Duration` in
  nanoseconds, `StartUTC`, headers as `request_<Name>`):
  https://doc.traefik.io/traefik/observability/access-logs/
- Envoy `json_format` with the keys Envoy's and Istio's examples use (`start_time`, `method`,
  `path`, `response_code`, `bytes_sent`, `duration` in ms, `x_forwarded_for`, `user_agent`,
  `authority`, `downstream_remote_address`):
  https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage
- nginx `log_format ... escape=json` objects keyed by nginx variable names (`remote_addr`,
  `request`, `status`, `time_iso8601`...), read with the same table as a declared nginx format.

Caddy's `client_ip` is Caddy's own answer to the forwarded chain (its `trusted_proxies`) and is
taken as it is; every other shape goes through `[ingest] trusted_proxies`.
"""

from __future__ import annotations

import re
from typing import Any

from anonymizer.errors import RecordInvalid
from collector.forwarded import TrustedProxies, client_address, x_forwarded_for
from collector.log_format import NGINX_ROLES, record_from_roles

_DIGITS = re.compile(r"[0-9]{1,20}")
NAMES = ("caddy", "traefik", "envoy-json", "nginx-json")


def parse_proxy_json(doc: Any, trusted: TrustedProxies) -> dict[str, Any]:
    """A decoded JSON line as a record; RecordInvalid("line") when no known shape fits."""
    if not isinstance(doc, dict):
        raise RecordInvalid("line", "JSON line is not an object")
    if isinstance(doc.get("request"), dict) and "status" in doc:
        return _caddy(doc, trusted)
    if "RequestMethod" in doc or "ClientHost" in doc:
        return _traefik(doc, trusted)
    if "response_code" in doc or "downstream_remote_address" in doc:
        return _envoy(doc, trusted)
    if "remote_addr" in doc or "request" in doc:
        return _nginx(doc, trusted)
    raise RecordInvalid("line", "JSON line is none of caddy, traefik, envoy-json, nginx-json")


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if isinstance(value, str):
        return "" if value == "-" else value
    return ""


def _whole(doc: dict[str, Any], key: str, field: str) -> int | None:
    """A whole number, as JSON number or as digits in a string (Envoy writes strings)."""
    value = doc.get(key)
    if value is None or value == "-" or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise RecordInvalid(field, "must be a whole number")


def _number(doc: dict[str, Any], key: str) -> float | None:
    value = doc.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,15}(?:\.[0-9]{1,9})?", value):
        return float(value)
    if value is None or value == "-" or value == "":
        return None
    raise RecordInvalid("duration_ms", "the request time is not a number")


def _put(record: dict[str, Any], field: str, value: Any) -> None:
    if value is not None and value != "":
        record[field] = value


def _header(headers: Any, name: str) -> str:
    """Caddy logs headers as {Name: [values]}."""
    if not isinstance(headers, dict):
        return ""
    value = headers.get(name)
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return value if isinstance(value, str) else ""


def _caddy(doc: dict[str, Any], trusted: TrustedProxies) -> dict[str, Any]:
    request: dict[str, Any] = doc["request"]
    headers = request.get("headers")
    record: dict[str, Any] = {}
    client = _text(request, "client_ip")
    if client:
        record["ip"] = client
    else:
        peer = _text(request, "remote_ip")
        chain = x_forwarded_for(_header(headers, "X-Forwarded-For"))
        _put(record, "ip", client_address(peer, chain, trusted) if peer else "")
    ts = _number(doc, "ts")
    if ts is not None:
        record["time"] = int(ts * 1000)
    _put(record, "method", _text(request, "method"))
    _put(record, "host", _text(request, "host"))
    _put(record, "path", _text(request, "uri"))
    _put(record, "status", _whole(doc, "status", "status") or None)
    _put(record, "bytes", _whole(doc, "size", "bytes"))
    duration = _number(doc, "duration")
    if duration is not None:
        record["duration_ms"] = duration * 1000.0
    _put(record, "user_agent", _header(headers, "User-Agent"))
    _put(record, "referrer", _header(headers, "Referer"))
    _put(record, "user_id", _text(doc, "user_id"))
    return record


def _traefik(doc: dict[str, Any], trusted: TrustedProxies) -> dict[str, Any]:
    record: dict[str, Any] = {}
    peer = _text(doc, "ClientHost")
    chain = x_forwarded_for(_text(doc, "request_X-Forwarded-For"))
    _put(record, "ip", client_address(peer, chain, trusted) if peer else "")
    _put(record, "time", _text(doc, "StartUTC") or _text(doc, "time") or None)
    _put(record, "method", _text(doc, "RequestMethod"))
    _put(record, "host", _text(doc, "RequestHost"))
    _put(record, "path", _text(doc, "RequestPath"))
    _put(record, "status", _whole(doc, "DownstreamStatus", "status") or None)
    _put(record, "bytes", _whole(doc, "DownstreamContentSize", "bytes"))
    nanos = _number(doc, "Duration")
    if nanos is not None:
        record["duration_ms"] = nanos / 1_000_000.0
    _put(record, "user_agent", _text(doc, "request_User-Agent"))
    _put(record, "referrer", _text(doc, "request_Referer"))
    _put(record, "user_id", _text(doc, "ClientUsername"))
    return record


def _envoy(doc: dict[str, Any], trusted: TrustedProxies) -> dict[str, Any]:
    record: dict[str, Any] = {}
    peer = _text(doc, "downstream_direct_remote_address") or _text(doc, "downstream_remote_address")
    chain = x_forwarded_for(_text(doc, "x_forwarded_for") or _text(doc, "x-forwarded-for"))
    _put(record, "ip", client_address(peer, chain, trusted) if peer else "")
    _put(record, "time", _text(doc, "start_time") or None)
    _put(record, "method", _text(doc, "method"))
    _put(record, "host", _text(doc, "authority") or _text(doc, ":authority"))
    _put(record, "path", _text(doc, "path"))
    _put(record, "status", _whole(doc, "response_code", "status") or None)
    _put(record, "bytes", _whole(doc, "bytes_sent", "bytes"))
    duration = _number(doc, "duration")
    if duration is not None:
        record["duration_ms"] = duration
    _put(record, "user_agent", _text(doc, "user_agent") or _text(doc, "user-agent"))
    _put(record, "referrer", _text(doc, "referer"))
    return record


def _nginx(doc: dict[str, Any], trusted: TrustedProxies) -> dict[str, Any]:
    values: dict[str, str] = {}
    for key, role in NGINX_ROLES.items():
        value = doc.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value and value != "-" and role not in values:
            values[role] = value
    return record_from_roles(values, trusted)
