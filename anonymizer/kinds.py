"""The record kinds: ONE registry, `KINDS`, of what a kind is in the pure library.

A kind is its name, the table its rows go to, the fields it requires, how a raw record becomes
a typed one and how a typed record becomes a row. Everything else about a kind is read from this
registry or from `anonymizer.rules`, never declared again: the input fields a record may carry
are those the rules name, and the pseudonym columns of each identifier are those of the rules'
identifier entries. The collector adds only how a kind is served (its HTTP route, which records
are enriched and how) on top, keyed by these objects; `explain` and the privacy doc dispatch
through them; subject export and deletion find their columns through `Kind.identifiers`.

A kind's rows are built by the operators its rules name (`anonymizer.anonymize` compiles them
into one plan per kind and policy; `plans` caches those per policy object).

Adding a kind: its record type (types.py), value parser (validate.py), field rules naming their
operators (rules.py) and one entry here with its table's columns (plus its table in sql/ and its
route in collector/kinds.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

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

if TYPE_CHECKING:
    from anonymizer.anonymize import Plan


@dataclass(frozen=True, slots=True)
class Kind:
    """One record kind. `parse` sees only the fields the rules name (`validate` checks that
    first); `build` gets the facts enrichment found (empty `Enrichment()` when none ran)."""

    name: KindName
    table: str
    required: tuple[str, ...]
    parse: Parse
    columns: tuple[str, ...]  # the table's columns in schema order: the row's (a test checks)

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

    def build(
        self, policy: Policy, ctx: TenantContext, record: Any, enrichment: Enrichment
    ) -> Built:
        """The row of a typed record (None when the policy drops it) and why it was dropped or
        its identifiers stripped (""), made by the operators of the kind's plan under `policy`.
        Raises `RecordInvalid` where the policy rejects the record."""
        hit = _PLANS.get(id(policy))  # `plans`, inlined: this runs for every record
        compiled = hit[1] if hit is not None and hit[0] is policy else plans(policy)
        return compiled[self.name].build(ctx, record, enrichment)


_PLANS: dict[int, tuple[Policy, Mapping[KindName, Plan]]] = {}
_MAX_PLANS = 256  # policies in use at once: the default, one per tenant override, a reload


def plans(policy: Policy) -> Mapping[KindName, Plan]:
    """The compiled plan of every kind under `policy`, made on its first record and kept while
    the policy object is (keyed by identity: a policy is immutable, and each holds its plans)."""
    hit = _PLANS.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    # the operators read the rules, which read this module: imported on the first record only
    from anonymizer.anonymize import compile_plans

    compiled = compile_plans(policy)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[id(policy)] = (policy, compiled)
    return compiled


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


_STAMPS = ("policy_version", "key_epoch", "retention_days")
_NETWORK = ("ip_prefix", "ip_version", "geo_country", "geo_region", "geo_city")
KINDS: Mapping[KindName, Kind] = MappingProxyType(
    {
        k.name: k
        for k in (
            Kind("access_log", "access_log", ("ip",), parse_access, (
                "tenant_id", "time", "service", "host", "method", "path", "route", "query",
                "status", "bytes", "duration_ms", "referrer_host", *_NETWORK, "browser_family",
                "browser_major", "os_family", "os_version", "device_family", "device_brand",
                "device_model", "is_mobile", "is_tablet", "is_pc", "is_bot", "user_pseudonym",
                "session_pseudonym", "visitor_id", *_STAMPS,
            )),
            Kind("device", "device_info", ("device_id",), parse_device, (
                "tenant_id", "time", "device_pseudonym", "user_pseudonym", "visitor_id",
                "manufacturer", "model", "os", "os_version", "app_version", "screen", "locale",
                *_NETWORK, "browser_family", "browser_major", "is_bot", *_STAMPS,
            )),
            Kind("event", "usage_events", ("event",), parse_event, (
                "tenant_id", "time", "event", "feature", "action", "user_pseudonym",
                "session_pseudonym", "url_host", "url_path", "url_route", "url_query",
                "properties", "identifiers_stripped", "consent_reason", *_STAMPS,
            )),
            Kind("mail_scan", "mail_scans", ("imb",), parse_mail_scan, (
                "tenant_id", "time", "event", "barcode_id", "service_type", "mailer_id",
                "serial_pseudonym", "routing_zip", "facility_zip", "operation_code",
                "mail_class", "delivery_status", *_STAMPS,
            )),
        )
    }
)  # fmt: skip
KIND_NAMES: tuple[KindName, ...] = tuple(KINDS)
RECORD_TABLES: tuple[str, ...] = tuple(k.table for k in KINDS.values())
