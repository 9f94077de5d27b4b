"""The record kinds: ONE registry, `KINDS`, of what a kind is in the pure library.

A kind is its name, the table its rows go to, the fields it requires, how a raw record becomes
a typed one and how a typed record becomes a row. Everything else about a kind is read from this
registry or from `anonymizer.rules`, never declared again: the input fields a record may carry
are those the rules name, and the pseudonym columns of each identifier are those of the rules'
identifier entries. The collector adds only how a kind is served (its HTTP route, which records
are enriched and how) on top, keyed by these objects; `explain` and the privacy doc dispatch
through them; subject export and deletion find their columns through `Kind.identifiers`.

Adding a kind: its record type (types.py), value parser (validate.py), row builder
(anonymize.py), field rules (rules.py) and one entry here (plus its table in sql/ and its route
in collector/kinds.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any, Literal

from anonymizer.anonymize import (
    anonymize_access,
    anonymize_device,
    anonymize_event,
    anonymize_mail_scan,
)
from anonymizer.policy import Policy
from anonymizer.types import (
    AccessRecord,
    DeviceRecord,
    Enrichment,
    EventRecord,
    MailScanRecord,
    TenantContext,
)
from anonymizer.validate import (
    TimeWindow,
    check_fields,
    parse_access,
    parse_device,
    parse_event,
    parse_mail_scan,
)

KindName = Literal["access_log", "device", "event", "mail_scan"]
Record = AccessRecord | DeviceRecord | EventRecord | MailScanRecord
Row = dict[str, Any]
# (the row, or None when the policy drops the record; why it was dropped or stripped, or "")
Built = tuple[Row | None, str]
Parse = Callable[[dict[str, Any], TimeWindow], Any]
Build = Callable[[Policy, TenantContext, Any, Enrichment], Built]


@dataclass(frozen=True, slots=True)
class Kind:
    """One record kind. `parse` sees only the fields the rules name (`validate` checks that
    first); `build` gets the facts enrichment found (empty `Enrichment()` when none ran)."""

    name: KindName
    table: str
    required: tuple[str, ...]
    parse: Parse
    build: Build

    @property
    def fields(self) -> frozenset[str]:
        """The input fields a record may carry: those the rules name (any other has no rule)."""
        return _from_rules(self.name)[0]

    @property
    def identifiers(self) -> Mapping[str, tuple[str, ...]]:
        """Identifier (an `identifiers.fields` entry) -> the columns holding its pseudonym."""
        return _from_rules(self.name)[1]

    def validate(self, raw: Any, window: TimeWindow) -> Any:
        """A raw decoded record -> the typed record, or `RecordInvalid` naming the field and the
        reason (never the value). A field no rule names is rejected."""
        return self.parse(check_fields(raw, self.fields), window)


@cache
def _from_rules(name: KindName) -> tuple[frozenset[str], Mapping[str, tuple[str, ...]]]:
    # rules.py reads the tables of this registry, so it is imported on first use, not above
    from anonymizer.rules import rules_for

    rules = rules_for(name)
    identifiers: dict[str, tuple[str, ...]] = {}
    for r in rules:
        if r.identifier:
            identifiers[r.identifier] = identifiers.get(r.identifier, ()) + r.columns
    return frozenset(r.field for r in rules), MappingProxyType(identifiers)


def _access(policy: Policy, ctx: TenantContext, r: AccessRecord, e: Enrichment) -> Built:
    return anonymize_access(policy, ctx, r, e), ""


def _device(policy: Policy, ctx: TenantContext, r: DeviceRecord, e: Enrichment) -> Built:
    return anonymize_device(policy, ctx, r, e), ""


def _event(policy: Policy, ctx: TenantContext, r: EventRecord, e: Enrichment) -> Built:
    return anonymize_event(policy, ctx, r)


def _mail_scan(policy: Policy, ctx: TenantContext, r: MailScanRecord, e: Enrichment) -> Built:
    return anonymize_mail_scan(policy, ctx, r), ""


KINDS: Mapping[KindName, Kind] = MappingProxyType(
    {
        k.name: k
        for k in (
            Kind("access_log", "access_log", ("ip",), parse_access, _access),
            Kind("device", "device_info", ("device_id",), parse_device, _device),
            Kind("event", "usage_events", ("event",), parse_event, _event),
            Kind("mail_scan", "mail_scans", ("imb",), parse_mail_scan, _mail_scan),
        )
    }
)
KIND_NAMES: tuple[KindName, ...] = tuple(KINDS)
RECORD_TABLES: tuple[str, ...] = tuple(k.table for k in KINDS.values())
