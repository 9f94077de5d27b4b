"""Replace what the detectors find in free text by its placeholder, or reject the record
(`pii.action`, `pii.fields`, `pii.digits`).

A free-text field's rule stores it as sent; the detectors then run once over the finished row
(`finish`), over every text value no named operator made and every key and value of a map: a
column added later is covered without anyone having to remember it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar

from anonymizer.errors import RecordInvalid
from anonymizer.kinds import KINDS
from anonymizer.operators.operator import (
    Finish,
    Operator,
    Outcome,
    Row,
    Sample,
    path_of,
)
from anonymizer.policy import PiiPolicy, Policy
from anonymizer.rules import FieldRule

_STAMPS = {"tenant_id": "tenant", "key_epoch": "key epoch"}
_NETWORK = {
    "ip_prefix": "prefix", "geo_country": "geo", "geo_region": "geo", "geo_city": "geo",
    "visitor_id": "visitor id",
}  # fmt: skip
# The text columns each table gets from a named operator (what they are made by). Every OTHER
# text value of a row (and every key and value of a map) is free text and goes through the
# detectors.
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


def refuse(field: str, found: str) -> RecordInvalid:
    """The rejection of a record whose `field` holds personal data of class `found`: the class
    found, never the value."""
    return RecordInvalid(field, f"holds personal data ({found}); the policy (pii) rejects it")


def detect_free_text(policy: Policy, table: str, row: dict[str, Any]) -> dict[str, Any]:
    """Replace what the detectors find in every free-text value of `row` by its placeholder, in
    place (`call {phone} now`), or raise `RecordInvalid` where the policy rejects instead."""
    return _detect(NAMED_COLUMNS[table], FREE_TEXT_SOURCES.get(table, {}), policy.pii, row)


def _detect(
    named: Mapping[str, str], sources: Mapping[str, str], pii: PiiPolicy, row: Row
) -> dict[str, Any]:
    redact = pii.detectors.redact
    for column, value in row.items():
        if isinstance(value, str):
            if value and column not in named:
                stored, found = redact(value)
                if found:
                    field = sources.get(column, column)
                    if pii.action_for(field) == "reject":
                        raise refuse(field, found)
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
            raise refuse(column, found)
        if isinstance(item, str):
            stored, hit = pii.detectors.redact(item)
            if hit and reject:
                raise refuse(f"{column}.{key}" if not found else column, hit)
            item = stored
        out[clean_key] = item
    return out


# Values of these exact types hold no text: the pass skips them without two isinstance calls.
_NO_TEXT = frozenset({int, float, bool, type(None)})


def _free_text_pass(
    named: Mapping[str, str], sources: Mapping[str, str], pii: PiiPolicy, columns: tuple[str, ...]
) -> Finish:
    """`_detect` for the rows of one plan, with the free-text columns picked once: a row starts
    as the plan's template (every column of the table, in order) and no step removes a key, so
    a row of the template's length holds exactly `columns`; any other row (a step that added a
    column) takes the full pass over every key. The detectors' memo is read directly: most
    values (client families, method, service) repeat, and a hit is the answer `redact` gives."""
    free = tuple(c for c in columns if c not in named)
    width = len(columns)
    dets = pii.detectors
    known = dets.memo()
    result = dets.result
    action_for = pii.action_for

    def finish(row: Row) -> dict[str, Any]:
        if len(row) != width:
            return _detect(named, sources, pii, row)
        for column in free:
            value = row[column]
            if type(value) in _NO_TEXT:
                continue
            if isinstance(value, str):
                if value:
                    hit = known.get(value)
                    if hit is None:
                        hit = result(value)
                    found = hit[1]
                    if found:
                        field = sources.get(column, column)
                        if action_for(field) == "reject":
                            raise refuse(field, found)
                        row[column] = hit[0]
            elif isinstance(value, dict):
                row[column] = _detect_map(pii, column, value)
        return row

    return finish


class Pii(Operator):
    name: ClassVar[str] = "pii"
    policy_keys: ClassVar[tuple[str, ...]] = ("pii.action", "pii.fields", "pii.digits")

    def stores(self, rule: FieldRule, policy: Policy) -> Mapping[str, str]:
        """The field as sent; `finish` redacts it with the rest of the row's free text."""
        (column,) = rule.columns
        return {column: path_of(rule)}

    def finish(self, policy: Policy, table: str) -> Finish:
        sources = FREE_TEXT_SOURCES.get(table, {})
        columns = next((k.columns for k in KINDS.values() if k.table == table), None)
        if columns is None:
            return partial(_detect, NAMED_COLUMNS[table], sources, policy.pii)
        return _free_text_pass(NAMED_COLUMNS[table], sources, policy.pii, columns)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if key == "pii.digits":
            d = new.pii.digits
            if d:
                return f"runs of {d} or more digits are now replaced by {{id}}"
            return "runs of digits are no longer replaced by {id} in free text"
        action = (
            "rejected (per record)" if new.pii.action == "reject" else "replaced by placeholders"
        )
        per_field = f"; per field: {dict(new.pii.fields)}" if new.pii.fields else ""
        return f"personal data found in a kept field is now {action}{per_field}"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        """A free-text field: kept as sent unless the detectors found something in it."""
        if sample.policy.pii.detectors.find(str(getattr(sample.record, rule.field))):
            return Outcome("redacted", "personal data replaced by its placeholder")
        return Outcome("kept")
