"""Validation of product-usage events (`POST /v1/events`).

`properties` is a flat map: a nested object or list is rejected (it has no column and no rule),
so is a key that is not a short plain name.
"""

from __future__ import annotations

import re
from typing import Any

from anonymizer.consent import CATEGORIES
from anonymizer.types import Consent, EventRecord
from collector.errors import RecordError
from collector.records import (
    TimeWindow,
    check_fields,
    identifier_field,
    parse_time,
    required_string,
    string_field,
)

EVENT_FIELDS = frozenset(
    {
        "time", "event", "feature", "action", "user_id", "session_id", "url", "properties",
        "consent", "gpc", "dnt",
    }
)  # fmt: skip
MAX_PROPERTIES = 64
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


def _properties(raw: dict[str, Any]) -> tuple[tuple[str, str | int | float | bool], ...]:
    props = raw.get("properties")
    if props is None:
        return ()
    if not isinstance(props, dict):
        raise RecordError("properties", "must be an object of string, number or boolean values")
    if len(props) > MAX_PROPERTIES:
        raise RecordError("properties", f"more than {MAX_PROPERTIES} properties")
    out = []
    for key, value in props.items():
        if not _KEY.fullmatch(key):
            raise RecordError(
                "properties", "keys must be names of letters, digits and _.:- (<= 64)"
            )
        if isinstance(value, dict | list):
            raise RecordError(f"properties.{key}", "nested values are not allowed: flatten the map")
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise RecordError(f"properties.{key}", "must be a string, number or boolean")
        if isinstance(value, str) and len(value) > 512:
            raise RecordError(f"properties.{key}", "longer than 512 characters")
        out.append((key, value))
    return tuple(out)


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):  # the DNT and Sec-GPC headers are "1"
        return value in (1, "1")
    raise RecordError(name, "must be true or false")


def _consent(raw: dict[str, Any]) -> Consent:
    value = raw.get("consent")
    categories: frozenset[str] | None = None
    if value is not None:
        if isinstance(value, str):
            value = [c.strip() for c in value.split(",") if c.strip()]
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise RecordError("consent", "must be a list of categories")
        unknown = set(value) - CATEGORIES
        if unknown:
            raise RecordError("consent", "categories are essential, analytics, preference")
        categories = frozenset(value)
    return Consent(categories, _flag(raw, "gpc"), _flag(raw, "dnt"))


def validate_event(raw: Any, window: TimeWindow) -> EventRecord:
    raw = check_fields(raw, EVENT_FIELDS)
    return EventRecord(
        time_ms=parse_time(raw.get("time"), window),
        event=required_string(raw, "event", 128),
        feature=string_field(raw, "feature", 128),
        action=string_field(raw, "action", 128),
        user_id=identifier_field(raw, "user_id"),
        session_id=identifier_field(raw, "session_id"),
        url=string_field(raw, "url", 8192),
        properties=_properties(raw),
        consent=_consent(raw),
    )
