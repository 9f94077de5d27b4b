"""Validation of device-information records (`POST /v1/devices`)."""

from __future__ import annotations

from typing import Any

from anonymizer.types import DeviceRecord
from collector.errors import RecordError
from collector.records import (
    TimeWindow,
    check_fields,
    identifier_field,
    ip_field,
    parse_time,
    string_field,
)

DEVICE_FIELDS = frozenset(
    {
        "time", "device_id", "user_id", "manufacturer", "model", "os", "os_version",
        "app_version", "screen", "locale", "ip", "user_agent",
    }
)  # fmt: skip


def validate_device(raw: Any, window: TimeWindow) -> DeviceRecord:
    raw = check_fields(raw, DEVICE_FIELDS)
    device_id = identifier_field(raw, "device_id")
    if not device_id:
        raise RecordError("device_id", "is required")
    return DeviceRecord(
        time_ms=parse_time(raw.get("time"), window),
        device_id=device_id,
        user_id=identifier_field(raw, "user_id"),
        manufacturer=string_field(raw, "manufacturer", 64),
        model=string_field(raw, "model", 128),
        os=string_field(raw, "os", 64),
        os_version=string_field(raw, "os_version", 32),
        app_version=string_field(raw, "app_version", 32),
        screen=string_field(raw, "screen", 32),
        locale=string_field(raw, "locale", 35),
        ip=ip_field(raw),
        user_agent=string_field(raw, "user_agent", 2048),
    )
