"""Validation of mail-scan events (`POST /v1/mail-scans`): the IMb is decoded and checked here
(digits or 65 bars, USPS-B-3200 frame check) so a damaged barcode is rejected, never stored."""

from __future__ import annotations

from typing import Any

from anonymizer.imb import ImbError, parse_imb
from anonymizer.types import MailScanRecord
from collector.errors import RecordError
from collector.records import TimeWindow, check_fields, parse_time, required_string, string_field

MAIL_SCAN_FIELDS = frozenset(
    {"time", "imb", "event", "facility_zip", "operation_code", "mail_class", "delivery_status"}
)


def validate_mail_scan(raw: Any, window: TimeWindow) -> MailScanRecord:
    raw = check_fields(raw, MAIL_SCAN_FIELDS)
    try:
        imb = parse_imb(required_string(raw, "imb", 80))
    except ImbError as e:
        raise RecordError("imb", str(e)) from None
    facility = string_field(raw, "facility_zip", 10).replace("-", "")
    if facility and not (facility.isascii() and facility.isdigit() and len(facility) in (5, 9)):
        raise RecordError("facility_zip", "must be a 5-digit ZIP or ZIP+4")
    return MailScanRecord(
        time_ms=parse_time(raw.get("time"), window),
        imb=imb,
        event=string_field(raw, "event", 64),
        facility_zip=facility[:5],
        operation_code=string_field(raw, "operation_code", 16),
        mail_class=string_field(raw, "mail_class", 32),
        delivery_status=string_field(raw, "delivery_status", 64),
    )
