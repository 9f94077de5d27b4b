"""Who may see which `/metrics` series.

`/metrics` needs no key, so a scraper anywhere on the network can read it: without credentials it
gets only tenant-free aggregates (counts by kind, field and reason, queue gauges), never a tenant
id or a per-tenant count, which would tell who the customers are and how much each sends.
With `Authorization: Bearer <key>`:
- the operator's `[server] metrics_token_sha256` token: every tenant's series;
- a tenant key with the `metrics` or `admin` scope: that tenant's own series only;
- any other key: 403; an unknown key: 401 (a wrong credential never falls back to the public
  view silently).
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from collector.appkeys import AUTH, CONFIG

METRICS_SCOPE = frozenset({"metrics"})


def visible_tenants(request: web.Request) -> frozenset[str] | None:
    """The tenants whose series this caller may see: empty (public), one, or None (all)."""
    authorization = request.headers.get("Authorization")
    if authorization is None:
        return frozenset()
    expected = request.app[CONFIG].server.metrics_token_sha256
    scheme, _, token = authorization.partition(" ")
    if expected and scheme.lower() == "bearer" and token.strip():
        digest = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).hexdigest()
        if hmac.compare_digest(digest, expected):
            return None
    tenant = request.app[AUTH].authenticate(authorization)
    tenant.require(METRICS_SCOPE)
    return frozenset({tenant.id})
