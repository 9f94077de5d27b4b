"""`collector sql`: ask the running service (`POST /v1/admin/sql`), or, when none answers, open
the engine in this process. Either way the statement is checked and run read-only
(`collector.admin_sql`).

The service is reached where the config says it listens: its `[server] host` and `port`, a
wildcard host (`0.0.0.0`, `::`) meaning this machine's loopback. With `tls_cert` set the request
goes over HTTPS and the service must present that very certificate (it is the trust anchor: no
name check, the address is our own). The admin key comes from `COLLECTOR_API_KEY` or
`--key-file`, never from the command line (it would show in `ps` and the shell history).
"""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from collector.config import Config
from collector.errors import CollectorError

KEY_ENV = "COLLECTOR_API_KEY"
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - read, not bound
CONNECT_TIMEOUT_S = 5.0


class NoService(CollectorError):
    """Nothing listens where the config says the service does."""


def service_url(config: Config) -> str:
    host = WILDCARDS.get(config.server.host, config.server.host)
    scheme = "https" if config.server.tls_cert else "http"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{config.server.port}"


def tls_client_context(config: Config) -> ssl.SSLContext | None:
    """Trust exactly the service's configured certificate (chain): the request goes to our own
    address, so its name is not checked, only that the other end holds that certificate."""
    cert = config.server.tls_cert
    if cert is None:
        return None
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself is the anchor
    return context


def admin_key(key_file: str | None) -> str:
    """The admin key from `--key-file` (its first line) or `COLLECTOR_API_KEY`; "" when none."""
    if key_file:
        try:
            lines = Path(key_file).read_text().splitlines()
        except OSError as e:
            raise CollectorError(f"--key-file {key_file}: cannot read: {e.strerror}") from e
        return lines[0].strip() if lines else ""
    return os.environ.get(KEY_ENV, "").strip()


def ask_service(config: Config, key: str, query: str, timeout_s: float) -> list[dict[str, Any]]:
    """The rows the running service answers; `NoService` when none listens."""
    url = service_url(config)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(  # noqa: S310 - our own http(s) URL
        url + "/v1/admin/sql", data=orjson.dumps({"query": query}), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=timeout_s, context=tls_client_context(config)
        ) as answer:
            rows: list[dict[str, Any]] = orjson.loads(answer.read())["rows"]
            return rows
    except urllib.error.HTTPError as e:
        raise CollectorError(_refusal(url, e.code, e.read(), bool(key))) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError | FileNotFoundError):
            raise NoService(f"no collector answers on {url}") from None
        raise CollectorError(f"the collector on {url} cannot be reached: {e.reason}") from None
    except (ConnectionRefusedError, ConnectionResetError):
        raise NoService(f"no collector answers on {url}") from None


def _refusal(url: str, status: int, body: bytes, had_key: bool) -> str:
    if status == 401 and not had_key:
        return (
            f"a collector is running on {url}: give an admin key in {KEY_ENV} or --key-file "
            "(its engine is held by that process)"
        )
    try:
        doc = orjson.loads(body)
        return f"{doc['error']}: {doc['detail']}" if doc.get("detail") else str(doc["error"])
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return f"the collector on {url} answered {status}"
