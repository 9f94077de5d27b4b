"""The record kinds: for each, its route, table, validator and row builder. One pipeline serves
them all; a kind differs only in these four things."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anonymizer import Enrichment, Policy, TenantContext, anonymize_access
from anonymizer.anonymize import anonymize_device, anonymize_event, anonymize_mail_scan
from anonymizer.errors import RecordInvalid
from anonymizer.types import AccessRecord, DeviceRecord, EventRecord, MailScanRecord
from anonymizer.validate import (
    ACCESS_FIELDS,
    DEVICE_FIELDS,
    EVENT_FIELDS,
    MAIL_SCAN_FIELDS,
    TimeWindow,
    validate_access,
    validate_device,
    validate_event,
    validate_mail_scan,
)
from collector.enrich import Enricher

Row = dict[str, Any]
# (row or None when policy drops the record, reason it was dropped or stripped or "")
BuildRow = Callable[[Policy, TenantContext, Any, Enricher], tuple[Row | None, str]]


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    route: str
    table: str
    validate: Callable[[Any, TimeWindow], Any]
    build_row: BuildRow
    fields: frozenset[str]  # the input fields that have a rule; any other is rejected or dropped
    allow_text: bool = False  # combined-log text lines are access logs only


def _access(policy: Policy, ctx: TenantContext, r: AccessRecord, e: Enricher) -> tuple[Row, str]:
    enrichment = Enrichment(e.user_agent(r.user_agent), e.geo(r.ip))
    return anonymize_access(policy, ctx, r, enrichment), ""


def _device(policy: Policy, ctx: TenantContext, r: DeviceRecord, e: Enricher) -> tuple[Row, str]:
    enrichment = Enrichment(e.user_agent(r.user_agent), e.geo(r.ip))
    return anonymize_device(policy, ctx, r, enrichment), ""


def _event(
    policy: Policy, ctx: TenantContext, r: EventRecord, e: Enricher
) -> tuple[Row | None, str]:
    return anonymize_event(policy, ctx, r)


def _mail(policy: Policy, ctx: TenantContext, r: MailScanRecord, e: Enricher) -> tuple[Row, str]:
    return anonymize_mail_scan(policy, ctx, r), ""


ACCESS_LOG = Kind(
    "access_log", "/v1/logs", "access_log", validate_access, _access, ACCESS_FIELDS, True
)
DEVICE = Kind("device", "/v1/devices", "device_info", validate_device, _device, DEVICE_FIELDS)
EVENT = Kind("event", "/v1/events", "usage_events", validate_event, _event, EVENT_FIELDS)
MAIL_SCAN = Kind(
    "mail_scan", "/v1/mail-scans", "mail_scans", validate_mail_scan, _mail, MAIL_SCAN_FIELDS
)
KINDS: dict[str, Kind] = {k.name: k for k in (ACCESS_LOG, DEVICE, EVENT, MAIL_SCAN)}


def _unmapped(raw: Any, window: TimeWindow) -> Any:
    raise RecordInvalid("", "no record kind")


# Stands for OTLP log records that map onto no kind, so they are counted and reported like any
# rejected record; nothing is ever validated or stored under it.
OTLP_UNMAPPED = Kind("otlp_unmapped", "/otlp/v1/logs", "", _unmapped, _mail, frozenset())
