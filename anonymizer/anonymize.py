"""`policy + record -> row`: the single place where a record becomes storable.

The row is built from an explicit list of output columns; an input field reaches storage only
through a rule below, so a field the policy does not name is never passed through.
"""

from __future__ import annotations

from typing import Any

from anonymizer.geo import generalize_geo
from anonymizer.ip import truncate_ip
from anonymizer.policy import Policy
from anonymizer.pseudonym import pseudonymize
from anonymizer.types import AccessRecord, Enrichment, TenantContext
from anonymizer.url import referrer_host, scrub_host


def anonymize_access(
    policy: Policy, ctx: TenantContext, record: AccessRecord, enrichment: Enrichment
) -> dict[str, Any]:
    """The `access_log` row for one record; the full IP and raw identifiers stop here."""
    path, query = policy.url.scrub(record.path)
    geo = generalize_geo(enrichment.geo, policy.geo.granularity)
    ua = enrichment.user_agent
    ids = policy.identifiers.fields
    return {
        "tenant_id": ctx.tenant_id,
        "time": record.time_ms / 1000,
        "service": record.service,
        "host": scrub_host(record.host),
        "method": record.method,
        "path": path,
        "query": query,
        "status": record.status,
        "bytes": record.bytes,
        "duration_ms": record.duration_ms,
        "referrer_host": referrer_host(record.referrer),
        "ip_prefix": truncate_ip(record.ip, policy.ip.ipv4_prefix, policy.ip.ipv6_prefix),
        "ip_version": record.ip.version,
        "geo_country": geo.country,
        "geo_region": geo.region,
        "geo_city": geo.city,
        "browser_family": ua.browser_family,
        "browser_major": ua.browser_major,
        "os_family": ua.os_family,
        "os_version": ua.os_version,
        "device_family": ua.device_family,
        "device_brand": ua.device_brand,
        "device_model": ua.device_model,
        "is_mobile": ua.is_mobile,
        "is_tablet": ua.is_tablet,
        "is_pc": ua.is_pc,
        "is_bot": ua.is_bot,
        "user_pseudonym": pseudonymize(ctx.key, "user_id", record.user_id)
        if "user_id" in ids
        else "",
        "session_pseudonym": pseudonymize(ctx.key, "session_id", record.session_id)
        if "session_id" in ids
        else "",
        "policy_version": policy.version,
        "key_epoch": ctx.key.epoch,
        "retention_days": policy.retention.days_for(ctx.plan),
    }
