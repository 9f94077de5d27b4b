"""`policy + record -> row`: the single place where a record becomes storable.

The row is built from an explicit list of output columns; an input field reaches storage only
through a rule below, so a field the policy does not name is never passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from anonymizer.consent import consent_decision
from anonymizer.errors import RecordInvalid
from anonymizer.geo import generalize_geo
from anonymizer.ip import truncate_ip
from anonymizer.policy import PiiPolicy, Policy
from anonymizer.properties import property_texts
from anonymizer.pseudonym import DAY_MS, coarse_visitor_id, daily_visitor_id, pseudonymize
from anonymizer.types import (
    AccessRecord,
    ClientIp,
    DeviceRecord,
    Enrichment,
    EventRecord,
    MailScanRecord,
    TenantContext,
)
from anonymizer.url import referrer_host, route_template, scrub_host, split_url


def anonymize_access(
    policy: Policy, ctx: TenantContext, record: AccessRecord, enrichment: Enrichment
) -> dict[str, Any]:
    """The `access_log` row for one record; the full IP and raw identifiers stop here."""
    path, query, found = policy.url.scrub_found(record.path)
    _check_url(policy, "path", found)
    ua = enrichment.user_agent
    row = {
        "tenant_id": ctx.tenant_id,
        "time": record.time_ms / 1000,
        "service": record.service,
        "host": scrub_host(record.host),
        "method": record.method,
        "path": path,
        "route": route_template(path),
        "query": query,
        "status": record.status,
        "bytes": record.bytes,
        "duration_ms": record.duration_ms,
        "referrer_host": referrer_host(record.referrer),
        **_network(policy, record.ip, enrichment),
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
        "user_pseudonym": _pseudonym(policy, ctx, "user_id", record.user_id),
        "session_pseudonym": _pseudonym(policy, ctx, "session_id", record.session_id),
        "visitor_id": _visitor_id(policy, ctx, record.time_ms, record.ip, record.user_agent),
        **_stamp(policy, ctx),
    }
    _late_visitor_id(policy, ctx, record.time_ms, row)
    return detect_free_text(policy, "access_log", row)


def _visitor_id(
    policy: Policy, ctx: TenantContext, time_ms: int, ip: ClientIp | None, user_agent: str
) -> str:
    """The day's visitor id, or "" when the policy has none or the record's day salt is gone
    (a salt is never recreated for a past day)."""
    if policy.identifiers.visitor_id != "daily" or ip is None:
        return ""
    salt = ctx.visitor_salts.get(time_ms // DAY_MS)
    return daily_visitor_id(salt, ctx.tenant_id, ip.packed, user_agent) if salt else ""


def _late_visitor_id(policy: Policy, ctx: TenantContext, time_ms: int, row: dict[str, Any]) -> None:
    """A record without a daily visitor id because its day's salt is gone (`late_window_hours`
    over) gets the policy's fallback subject: with `late_visitor_id = "coarse"`, a per-day hash
    of columns the row stores anyway, so backfilled traffic still reaches k in reports."""
    ids = policy.identifiers
    if row["visitor_id"] or ids.visitor_id != "daily" or ids.late_visitor_id != "coarse":
        return
    if not row["ip_prefix"]:  # no address: no visitor id, late or not
        return
    coarse = (row.get(c, "") for c in ("browser_family", "os_family", "device_family"))
    row["visitor_id"] = coarse_visitor_id(
        ctx.tenant_id, time_ms // DAY_MS, row["ip_prefix"], *coarse
    )


def _pseudonym(policy: Policy, ctx: TenantContext, field: str, value: str) -> str:
    """A keyed pseudonym when the policy lists the field; otherwise the field is dropped."""
    return pseudonymize(ctx.key, field, value) if field in policy.identifiers.fields else ""


def _stamp(policy: Policy, ctx: TenantContext) -> dict[str, Any]:
    return {
        "policy_version": policy.version,
        "key_epoch": ctx.key.epoch,
        "retention_days": policy.retention.days_for(ctx.plan),
    }


def _network(policy: Policy, ip: ClientIp | None, enrichment: Enrichment) -> dict[str, Any]:
    geo = generalize_geo(enrichment.geo, policy.geo.granularity)
    return {
        "ip_prefix": truncate_ip(ip, policy.ip.ipv4_prefix, policy.ip.ipv6_prefix) if ip else "",
        "ip_version": ip.version if ip else 0,
        "geo_country": geo.country,
        "geo_region": geo.region,
        "geo_city": geo.city,
    }


def anonymize_device(
    policy: Policy, ctx: TenantContext, record: DeviceRecord, enrichment: Enrichment
) -> dict[str, Any]:
    """The `device_info` row: the device id becomes a pseudonym, the address a network."""
    ua = enrichment.user_agent
    row = {
        "tenant_id": ctx.tenant_id,
        "time": record.time_ms / 1000,
        "device_pseudonym": _pseudonym(policy, ctx, "device_id", record.device_id),
        "user_pseudonym": _pseudonym(policy, ctx, "user_id", record.user_id),
        "visitor_id": _visitor_id(policy, ctx, record.time_ms, record.ip, record.user_agent),
        "manufacturer": record.manufacturer,
        "model": record.model,
        "os": record.os,
        "os_version": record.os_version,
        "app_version": record.app_version,
        "screen": record.screen,
        "locale": record.locale,
        **_network(policy, record.ip, enrichment),
        "browser_family": ua.browser_family if record.user_agent else "",
        "browser_major": ua.browser_major,
        "is_bot": ua.is_bot,
        **_stamp(policy, ctx),
    }
    _late_visitor_id(policy, ctx, record.time_ms, row)
    return detect_free_text(policy, "device_info", row)


def anonymize_event(
    policy: Policy, ctx: TenantContext, record: EventRecord
) -> tuple[dict[str, Any] | None, str]:
    """The `usage_events` row, or None when consent rules drop it; with the consent reason
    (`""` when identifiers are kept)."""
    decision, reason = consent_decision(policy.consent, record.consent)
    if decision == "drop":
        return None, reason
    keep_ids = decision == "keep"
    host, target = split_url(record.url)
    path, query, found = policy.url.scrub_found(target)
    _check_url(policy, "url", found)
    row = {
        "tenant_id": ctx.tenant_id,
        "time": record.time_ms / 1000,
        "event": record.event,
        "feature": record.feature,
        "action": record.action,
        "user_pseudonym": _pseudonym(policy, ctx, "user_id", record.user_id) if keep_ids else "",
        "session_pseudonym": _pseudonym(policy, ctx, "session_id", record.session_id)
        if keep_ids
        else "",
        "url_host": scrub_host(host),
        "url_path": path,
        "url_route": route_template(path),
        "url_query": query,
        "properties": property_texts(record.properties),
        "identifiers_stripped": not keep_ids,
        "consent_reason": reason,
        **_stamp(policy, ctx),
    }
    return detect_free_text(policy, "usage_events", row), reason


def anonymize_mail_scan(
    policy: Policy, ctx: TenantContext, record: MailScanRecord
) -> dict[str, Any]:
    """The `mail_scans` row: never the full 31 digits. The mailer id names a business and is kept;
    the serial is pseudonymized; the routing ZIP is cut to ZIP5 or ZIP3 (never ZIP+4 or the
    delivery point, which name a household)."""
    imb = record.imb
    zip_len = {"none": 0, "zip3": 3, "zip5": 5}[policy.mail.routing_zip]
    row = {
        "tenant_id": ctx.tenant_id,
        "time": record.time_ms / 1000,
        "event": record.event,
        "barcode_id": imb.barcode_id,
        "service_type": imb.service_type,
        "mailer_id": imb.mailer_id,
        "serial_pseudonym": _pseudonym(policy, ctx, "imb.serial", imb.mailer_id + imb.serial),
        "routing_zip": imb.routing[:zip_len] if len(imb.routing) >= 5 else "",
        "facility_zip": record.facility_zip,
        "operation_code": record.operation_code,
        "mail_class": record.mail_class,
        "delivery_status": record.delivery_status,
        **_stamp(policy, ctx),
    }
    return detect_free_text(policy, "mail_scans", row)


# --- personal data in free text ---------------------------------------------------------------

_STAMPS = {"tenant_id": "tenant", "key_epoch": "key epoch"}
_NETWORK = {
    "ip_prefix": "prefix", "geo_country": "geo", "geo_region": "geo", "geo_city": "geo",
    "visitor_id": "visitor id",
}  # fmt: skip
# The text columns each table gets from a named operator (what they are made by). Every OTHER
# text value of a row (and every key and value of a map) is free text and goes through the
# detectors: a column added later is covered without anyone having to remember it.
NAMED_COLUMNS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "access_log": MappingProxyType({
            **_STAMPS, **_NETWORK, "host": "host", "path": "path",
            "route": "route", "query": "query", "referrer_host": "host",
            "user_pseudonym": "pseudonym", "session_pseudonym": "pseudonym",
        }),
        "device_info": MappingProxyType({
            **_STAMPS, **_NETWORK, "device_pseudonym": "pseudonym", "user_pseudonym": "pseudonym",
        }),
        "usage_events": MappingProxyType({
            **_STAMPS, "user_pseudonym": "pseudonym", "session_pseudonym": "pseudonym",
            "url_host": "host", "url_path": "path", "url_route": "route", "url_query": "query",
            "consent_reason": "consent outcome",
        }),
        "mail_scans": MappingProxyType({
            **_STAMPS, "barcode_id": "imb", "service_type": "imb", "mailer_id": "imb",
            "serial_pseudonym": "pseudonym", "routing_zip": "zip", "facility_zip": "zip",
        }),
    }
)  # fmt: skip
_UA = ("browser_family", "browser_major", "os_family", "device_family", "device_brand")
# Free-text columns made from another input field: the field `pii.fields` and errors name.
FREE_TEXT_SOURCES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "access_log": MappingProxyType(
            {**dict.fromkeys(_UA, "user_agent"), "os_version": "user_agent",
             "device_model": "user_agent"}
        ),
        "device_info": MappingProxyType(dict.fromkeys(_UA, "user_agent")),
    }
)  # fmt: skip


def _refuse(field: str, found: str) -> RecordInvalid:
    # the class found, never the value
    return RecordInvalid(field, f"holds personal data ({found}); the policy (pii) rejects it")


def _check_url(policy: Policy, field: str, found: str) -> None:
    if found and policy.pii.action_for(field) == "reject":
        raise _refuse(field, found)


def detect_free_text(policy: Policy, table: str, row: dict[str, Any]) -> dict[str, Any]:
    """Replace what the detectors find in every free-text value of `row` by its placeholder, in
    place (`call {phone} now`), or raise `RecordInvalid` where the policy rejects instead."""
    named = NAMED_COLUMNS[table]
    pii = policy.pii
    redact = pii.detectors.redact
    for column, value in row.items():
        if isinstance(value, str):
            if value and column not in named:
                stored, found = redact(value)
                if found:
                    field = FREE_TEXT_SOURCES.get(table, {}).get(column, column)
                    if pii.action_for(field) == "reject":
                        raise _refuse(field, found)
                    row[column] = stored
        elif isinstance(value, dict) and column not in named:
            row[column] = _detect_map(pii, column, value)
    return row


def _detect_map(pii: PiiPolicy, column: str, value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    reject = pii.action_for(column) == "reject"
    for key, item in value.items():
        clean_key, found = pii.detectors.redact(key)
        if found and reject:
            raise _refuse(column, found)
        if isinstance(item, str):
            stored, hit = pii.detectors.redact(item)
            if hit and reject:
                raise _refuse(f"{column}.{key}" if not found else column, hit)
            item = stored
        out[clean_key] = item
    return out
