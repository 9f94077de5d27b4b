"""What an ingest request says about its `text/plain` access-log lines, from its query string
(or headers, for senders that cannot set a query): the format, and the `service` and `host`
that text lines cannot carry themselves.

| query parameter | header | meaning |
| --- | --- | --- |
| `format` | `X-Log-Format` | `auto` (default: detected per line) or one built-in format name |
| `nginx_format` | `X-Nginx-Log-Format` | an nginx `log_format` string the lines follow |
| `apache_format` | `X-Apache-Log-Format` | an Apache `LogFormat` string the lines follow |
| `service` | `X-Log-Service` | set on every record (1-64 of letters, digits, `._:/-`) |
| `host` | `X-Log-Host` | set on every record without a host of its own |

A request's format wins over the tenant's declared one (`nginx_log_format`/`apache_log_format`).
Values are checked like the fields they become; a refusal is a 400 naming the parameter, never
echoing the value. The parameters belong to text bodies: with any other body they are refused.
"""

from __future__ import annotations

import re
from functools import lru_cache

from aiohttp import web

from collector.appkeys import CONFIG, TENANT
from collector.config import Config
from collector.errors import BadRequest
from collector.forwarded import TrustedProxies
from collector.line_formats import NAMES, TextOptions
from collector.log_format import FormatError, LogFormat, compile_apache, compile_nginx

PARAMETERS = {
    "format": "X-Log-Format",
    "nginx_format": "X-Nginx-Log-Format",
    "apache_format": "X-Apache-Log-Format",
    "service": "X-Log-Service",
    "host": "X-Log-Host",
}
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,255}")


@lru_cache(maxsize=256)
def declared(dialect: str, text: str) -> LogFormat:
    """A compiled format string (compiled once per distinct string; FormatError if bad)."""
    return compile_nginx(text) if dialect == "nginx" else compile_apache(text)


@lru_cache(maxsize=16)
def _proxies(cidrs: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies.parse(cidrs)


def _given(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name}: given more than once")
    if values:
        return values[0]
    return request.headers.get(PARAMETERS[name])


def refuse_for_non_text(request: web.Request) -> None:
    """These parameters describe text lines: with a JSON body they would be silently ignored."""
    for name in PARAMETERS:
        if _given(request, name) is not None:
            raise BadRequest(f"{name}: applies to text/plain bodies only")


def text_options(request: web.Request) -> TextOptions:
    config: Config = request.app[CONFIG]
    trusted = _proxies(config.ingest.trusted_proxies)
    fmt = _given(request, "format") or "auto"
    if fmt not in NAMES:
        raise BadRequest(f"format: must be one of {', '.join(NAMES)}")
    nginx = _given(request, "nginx_format")
    apache = _given(request, "apache_format")
    if nginx is not None and apache is not None:
        raise BadRequest("nginx_format and apache_format: give one, not both")
    log_format: LogFormat | None = None
    try:
        if nginx is not None:
            log_format = declared("nginx", nginx)
        elif apache is not None:
            log_format = declared("apache", apache)
    except FormatError as e:
        raise BadRequest(
            f"{'nginx_format' if nginx is not None else 'apache_format'}: {e}"
        ) from None
    if log_format is None and fmt == "auto":
        log_format = _tenant_format(config, request[TENANT].id)
    service = _given(request, "service") or ""
    if service and not _SERVICE.fullmatch(service):
        raise BadRequest("service: must be 1-64 letters, digits and ._:/- (starting alphanumeric)")
    host = _given(request, "host") or ""
    if host and not _HOST.fullmatch(host):
        raise BadRequest("host: must be a host name or address (letters, digits, .:-[]), <= 255")
    return TextOptions(trusted, fmt, log_format, service, host)


def _tenant_format(config: Config, tenant_id: str) -> LogFormat | None:
    for tenant in config.tenants:
        if tenant.id == tenant_id:
            if tenant.nginx_log_format:
                return declared("nginx", tenant.nginx_log_format)
            if tenant.apache_log_format:
                return declared("apache", tenant.apache_log_format)
    return None
