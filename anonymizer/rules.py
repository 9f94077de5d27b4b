"""What happens to every input field of every record kind: ONE declarative table.

This is the single source of truth the privacy team reads: for each (kind, input field) the
output column(s), the operator, the policy key that governs it (or "fixed rule") and why what is
stored is not personal data (or is pseudonymous under a key that can be destroyed). `explain`,
`anonymizer diff` and the generated `docs/privacy.md` are all read from it, and the doc generator
refuses to run when a column of the SQL schema has no rule here, or a rule names a column the
schema does not have.

The daily rollups (derived tables filled by materialized views) are described the same way: for
each rollup column, the columns of the anonymized source table it is made from, the operation
(grouped by, counted, summed, sketched, quantiles) and why it is not personal data. The doc
generator checks each against the view's SELECT.

Each field rule names the registered operator that does it (`op`, see `anonymizer.operators`):
under a policy that operator is bound to the rule and run by the kind's row builder
(`anonymizer.anonymize`), so the table drives what is stored; `explain` asks the same operator
what it did to one record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

# the kind registry, also read from here (the rules are about its kinds and their tables)
from anonymizer.kinds import KIND_NAMES as KIND_NAMES
from anonymizer.kinds import KINDS as KINDS
from anonymizer.kinds import RECORD_TABLES as RECORD_TABLES
from anonymizer.kinds import KindName as KindName
from anonymizer.policy import Policy, default_policy, policy_settings

Operator = Literal["kept", "truncated", "generalized", "pseudonymized", "redacted", "dropped"]
OPERATORS: tuple[Operator, ...] = (
    "kept",
    "truncated",
    "generalized",
    "pseudonymized",
    "redacted",
    "dropped",
)
FIXED_RULE = "fixed rule"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """What one input field (or one part of it) becomes in the kind's table."""

    kind: KindName
    field: str
    columns: tuple[str, ...]  # empty: nothing of this part is stored
    operator: Operator  # what the rule does when it is in force
    policy_keys: tuple[str, ...]  # empty: a fixed rule no policy setting changes
    how: str
    why: str  # why the stored value is not personal data, or is pseudonymous with a shreddable key
    part: str = ""  # which part of the field, when one field feeds several rules
    personal: bool = False  # the raw value may identify a person: never shown in full
    identifier: str = ""  # the `identifiers.fields` entry that switches the pseudonym on
    # the registered operator (anonymizer.operators.registry) that does this rule: bound to it
    # under a policy, it writes the rule's columns; empty: the rule stores nothing (a fragment)
    op: str = ""

    @property
    def label(self) -> str:
        """`ip`, or `ip (geo)` for one part of a field."""
        return f"{self.field} ({self.part})" if self.part else self.field

    @property
    def rule(self) -> str:
        """The policy keys that govern this rule, or "fixed rule"."""
        return ", ".join(self.policy_keys) if self.policy_keys else FIXED_RULE


@dataclass(frozen=True, slots=True)
class ColumnRule:
    """A column no input field feeds: stamped on every row, or a table that holds no records."""

    tables: tuple[str, ...]
    column: str
    source: str
    operator: Operator
    policy_keys: tuple[str, ...]
    how: str
    why: str

    @property
    def rule(self) -> str:
        return ", ".join(self.policy_keys) if self.policy_keys else FIXED_RULE


# --- building blocks shared by several kinds ------------------------------------------------

_UA_ACCESS_COLUMNS = (
    "browser_family", "browser_major", "os_family", "os_version", "device_family",
    "device_brand", "device_model", "is_mobile", "is_tablet", "is_pc", "is_bot",
)  # fmt: skip
_PSEUDONYM_KEYS = ("identifiers.fields", "identifiers.rotation")
_CONSENT_KEYS = (
    "consent.analytics_without_consent",
    "consent.honour_gpc",
    "consent.honour_dnt",
)
_PSEUDONYM_HOW = (
    "keyed BLAKE2b-128 (hex) of the field name and value under the tenant's key for the key epoch"
)


def _time(kind: KindName) -> FieldRule:
    return FieldRule(
        kind, "time", ("time",), "kept", (),
        "stored as sent, to the millisecond (absent: the receive time)",
        "A time says when something happened, not who did it.", op="time",
    )  # fmt: skip


def _ip(kind: KindName) -> tuple[FieldRule, ...]:
    return (
        FieldRule(
            kind, "ip", ("ip_prefix",), "truncated", ("ip.ipv4_prefix", "ip.ipv6_prefix"),
            "cut to its network prefix (IPv4-mapped IPv6 is cut as IPv4); the full address is "
            "never stored",
            "A network prefix is shared by the addresses of many subscribers, so it no longer "
            "singles out one connection.",
            personal=True, op="ip_prefix",
        ),
        FieldRule(
            kind, "ip", ("ip_version",), "generalized", (),
            "reduced to its address family, 4 or 6",
            "Whether an address is IPv4 or IPv6 is shared by billions of addresses.",
            part="family", personal=True, op="ip_family",
        ),
        FieldRule(
            kind, "ip", ("geo_country", "geo_region", "geo_city"), "generalized",
            ("geo.granularity",),
            "looked up in GeoIP on the full address in memory, then kept only down to the "
            "configured level (finer levels stored empty)",
            "A country, region or city is shared by many people; the address it came from is "
            "not stored.",
            part="geo", personal=True, op="geo",
        ),
        _visitor_id(kind, "ip"),
    )  # fmt: skip


_VISITOR_HOW = (
    "keyed BLAKE2b-128 of (tenant, full address, user agent) under a salt that exists for one "
    "UTC day plus `identifiers.late_window_hours` (for late records) and is then destroyed; "
    "a record after its day's salt is gone gets the `identifiers.late_visitor_id` fallback: "
    "empty (`none`) or `~` + BLAKE2b-128 of (tenant, day, stored prefix, browser, OS and "
    "device families) (`coarse`)"
)
_VISITOR_WHY = (
    "Pseudonymous for one day: once the day's salt is destroyed nothing links the id to the "
    "address, the agent or any other day. The coarse fallback is computed from columns the row "
    "stores anyway, so it tells nothing the row does not, and it merges everyone behind one "
    "prefix with the same client families, so it never counts more subjects than people; only a "
    "person seen both before and after the destruction of a day's salt counts twice that day."
)


def _visitor_id(kind: KindName, field: str) -> FieldRule:
    return FieldRule(
        kind, field, ("visitor_id",), "pseudonymized",
        ("identifiers.visitor_id", "identifiers.late_window_hours", "identifiers.late_visitor_id"),
        _VISITOR_HOW, _VISITOR_WHY,
        part="visitor id", personal=True, op="visitor_id",
    )  # fmt: skip


def _pseudonym(kind: KindName, field: str, column: str, consent: bool = False) -> FieldRule:
    how = _PSEUDONYM_HOW
    keys: tuple[str, ...] = _PSEUDONYM_KEYS
    if consent:
        how += "; left empty when the event lacks analytics consent (or has GPC / DNT honoured)"
        keys = keys + _CONSENT_KEYS
    return FieldRule(
        kind, field, (column,), "pseudonymized", keys, how,
        "Pseudonymous: the token cannot be reversed or tested against a guess without the "
        "tenant's key, which never leaves the data dir, and shredding the epoch's key makes it "
        "unlinkable forever.",
        personal=True, identifier=field, op="pseudonym",
    )  # fmt: skip


def _route(kind: KindName, field: str, column: str) -> FieldRule:
    return FieldRule(
        kind, field, (column,), "generalized", ("url.redact",),
        "the redacted path with every number, long hex string and placeholder segment as {id} "
        "(`/orders/42/items` -> `/orders/{id}/items`)",
        "A route template is shared by every request to that kind of page.",
        part="route", personal=True, op="route",
    )  # fmt: skip


def _url(
    kind: KindName, field: str, path: str, route: str, query: str, path_part: str = ""
) -> tuple[FieldRule, ...]:
    """The four rules of a URL-like field: its path, route template, query and fragment."""
    return (
        FieldRule(
            kind, field, (path,), "redacted", ("url.redact",),
            "a segment in which a detector finds personal data, even inside other text or "
            "percent-encoded (decoded up to 3 times), becomes its placeholder: {email}, {uuid}, "
            "{token}, {id} as `url.redact` lists them; {ip}, {phone}, {card}, {iban} always; "
            "`;` matrix parameters are dropped",
            "What is left is the page's route, which every visitor of that page shares.",
            part=path_part, personal=True, op="url_path",
        ),
        _route(kind, field, route),
        FieldRule(
            kind, field, (query,), "dropped", ("url.keep_query_params", "url.redact"),
            "parameters not on the allowlist are dropped (`&` and `;` both separate them); the "
            "values of kept ones are redacted like path segments",
            "Only allow-listed parameters such as campaign tags survive; search terms, tokens "
            "and ids in the query are never stored.",
            part="query", personal=True, op="query",
        ),
        FieldRule(
            kind, field, (), "dropped", (),
            "the `#fragment` is dropped",
            "Nothing of the fragment is stored.",
            part="fragment", personal=True,
        ),
    )  # fmt: skip


def _kept(kind: KindName, field: str, how: str, why: str, column: str = "") -> FieldRule:
    return FieldRule(kind, field, (column or field,), "kept", (), how, why, op="keep")


PII_KEYS = ("pii.action", "pii.fields", "pii.digits")
FREE_TEXT_HOW = (
    "stored as sent, except that what the detectors find (email, phone, card, IBAN, IP, token, "
    "UUID, long digit runs) is replaced in place by its placeholder, or the record is rejected "
    "(`pii.action`, `pii.fields`)"
)


def _free(kind: KindName, field: str, why: str) -> FieldRule:
    """A free-text field: kept, but run through the detectors (anonymizer.detectors)."""
    return FieldRule(kind, field, (field,), "redacted", PII_KEYS, FREE_TEXT_HOW, why, op="pii")


# --- the table ------------------------------------------------------------------------------

RULES: tuple[FieldRule, ...] = (
    # access_log -> access_log
    _time("access_log"),
    *_ip("access_log"),
    FieldRule(
        "access_log", "method", ("method",), "kept", PII_KEYS,
        "upper-cased (letters and `-` only, checked on input); goes through the detectors like "
        "free text",
        "An HTTP method is one of a handful of protocol words.", op="keep",
    ),
    FieldRule(
        "access_log", "host", ("host",), "redacted", (),
        "lower-cased without userinfo, port and trailing dot; an IP literal in any form "
        "(dotted, decimal, octal, hex, IPv6) becomes {ip}; an address or other personal data in "
        "a label is replaced by its placeholder",
        "The requested site belongs to the tenant, not to the visitor.",
        op="host",
    ),
    *_url("access_log", "path", "path", "route", "query"),
    _kept(
        "access_log", "status", "stored as sent",
        "An HTTP status code describes the response, not the person.",
    ),
    _kept(
        "access_log", "bytes", "stored as sent",
        "The size of a response describes the page, not the person.",
    ),
    _kept(
        "access_log", "duration_ms", "stored as sent",
        "How long the server took describes the server, not the person.",
    ),
    FieldRule(
        "access_log", "referrer", ("referrer_host",), "truncated", (),
        "cut to its host (lower-cased, no port, no userinfo); an IP literal becomes {ip}",
        "A referring site is shared by all its visitors; its path and query, which can carry "
        "anything, are dropped.",
        personal=True, op="referrer",
    ),
    FieldRule(
        "access_log", "user_agent", _UA_ACCESS_COLUMNS, "generalized", PII_KEYS,
        "parsed into browser, OS and device families; the raw string is never stored; the "
        "parsed fields go through the detectors like free text",
        "Browser, OS and device families are shared by many people, unlike the full string "
        "(a fingerprinting aid).",
        personal=True, op="user_agent",
    ),
    _visitor_id("access_log", "user_agent"),
    _pseudonym("access_log", "user_id", "user_pseudonym"),
    _pseudonym("access_log", "session_id", "session_pseudonym"),
    _free(
        "access_log", "service",
        "The tenant's own service name says nothing about the visitor.",
    ),
    # device -> device_info
    _time("device"),
    _pseudonym("device", "device_id", "device_pseudonym"),
    _pseudonym("device", "user_id", "user_pseudonym"),
    _free(
        "device", "manufacturer",
        "A manufacturer is shared by millions of devices.",
    ),
    _free(
        "device", "model",
        "A device model is shared by many devices.",
    ),
    _free(
        "device", "os",
        "An operating system is shared by many devices.",
    ),
    _free(
        "device", "os_version",
        "An OS version is shared by many devices.",
    ),
    _free(
        "device", "app_version",
        "A release of the tenant's app is shared by all who installed it.",
    ),
    _free(
        "device", "screen",
        "A screen size is shared by every device of a model.",
    ),
    _free(
        "device", "locale",
        "A language and region setting is shared by many people.",
    ),
    *_ip("device"),
    FieldRule(
        "device", "user_agent", ("browser_family", "browser_major", "is_bot"), "generalized",
        PII_KEYS,
        "parsed into browser family, major version and a bot flag; the raw string is never "
        "stored (no user agent: empty); the parsed fields go through the detectors",
        "A browser family and major version are shared by many people, unlike the full string.",
        personal=True, op="user_agent",
    ),
    _visitor_id("device", "user_agent"),
    # event -> usage_events
    _time("event"),
    _free(
        "event", "event",
        "An event name is defined by the tenant's product, not by the person.",
    ),
    _free(
        "event", "feature",
        "A feature name is defined by the tenant's product, not by the person.",
    ),
    _free(
        "event", "action",
        "An action name is defined by the tenant's product, not by the person.",
    ),
    _pseudonym("event", "user_id", "user_pseudonym", consent=True),
    _pseudonym("event", "session_id", "session_pseudonym", consent=True),
    FieldRule(
        "event", "url", ("url_host",), "redacted", (),
        "the host only, lower-cased without port; userinfo (user:password@) is dropped and an "
        "IP literal becomes {ip}",
        "The site belongs to the tenant, not to the visitor.",
        part="host", personal=True, op="host",
    ),
    *_url("event", "url", "url_path", "url_route", "url_query", path_part="path"),
    FieldRule(
        "event", "properties", ("properties",), "redacted", PII_KEYS,
        "keys and values go through the detectors: what they find (email, phone, card, IBAN, "
        "IP, token, UUID, long digit runs) is replaced in place by its placeholder, or the "
        "record is rejected (`pii.action`, `pii.fields`)",
        "Values of the shapes personal data takes are replaced; other free text is kept, so "
        "senders must not put names or addresses in property values.",
        personal=True, op="properties",
    ),
    FieldRule(
        "event", "consent", ("identifiers_stripped", "consent_reason"), "generalized",
        ("consent.analytics_without_consent",),
        "reduced to the outcome: identifiers kept, stripped (reason no_consent) or the event "
        "dropped",
        "Only whether identifiers were stripped, and why, is stored.",
        op="consent",
    ),
    FieldRule(
        "event", "gpc", ("identifiers_stripped", "consent_reason"), "generalized",
        ("consent.honour_gpc", "consent.analytics_without_consent"),
        "reduced to the outcome: when honoured, identifiers stripped (reason gpc) or the event "
        "dropped",
        "Only whether identifiers were stripped, and why, is stored.",
        op="consent",
    ),
    FieldRule(
        "event", "dnt", ("identifiers_stripped", "consent_reason"), "generalized",
        ("consent.honour_dnt", "consent.analytics_without_consent"),
        "reduced to the outcome: when honoured, identifiers stripped (reason dnt) or the event "
        "dropped",
        "Only whether identifiers were stripped, and why, is stored.",
        op="consent",
    ),
    # mail_scan -> mail_scans
    _time("mail_scan"),
    FieldRule(
        "mail_scan", "imb", ("barcode_id",), "kept", (),
        "the 2-digit barcode id, as decoded",
        "The barcode id is a presort code shared by the pieces of a mailing.",
        part="barcode id", personal=True, op="keep",
    ),
    FieldRule(
        "mail_scan", "imb", ("service_type",), "kept", (),
        "the 3-digit service type, as decoded",
        "The service type names the mail class and services, shared by a whole mailing.",
        part="service type", personal=True, op="keep",
    ),
    FieldRule(
        "mail_scan", "imb", ("mailer_id",), "kept", (),
        "the 6- or 9-digit mailer id, as decoded",
        "The mailer id names the business that sent the mail, not its recipient.",
        part="mailer id", personal=True, op="keep",
    ),
    FieldRule(
        "mail_scan", "imb", ("serial_pseudonym",), "pseudonymized", _PSEUDONYM_KEYS,
        _PSEUDONYM_HOW + " (of mailer id + serial)",
        "Pseudonymous: the serial identifies one mail piece and so its recipient; the token "
        "cannot be reversed without the tenant's key, and shredding the epoch's key makes it "
        "unlinkable forever.",
        part="serial", personal=True, identifier="imb.serial", op="pseudonym",
    ),
    FieldRule(
        "mail_scan", "imb", ("routing_zip",), "truncated", ("mail.routing_zip",),
        "the routing code cut to its ZIP5 or ZIP3; ZIP+4 and the delivery point are dropped",
        "A ZIP5 or ZIP3 holds thousands of households; the ZIP+4 and delivery point, which name "
        "a household, are never stored.",
        part="routing code", personal=True, op="routing_zip",
    ),
    _free(
        "mail_scan", "event",
        "A scan event (processed, delivered, ...) is a step of the postal process.",
    ),
    FieldRule(
        "mail_scan", "facility_zip", ("facility_zip",), "truncated", (),
        "a ZIP+4 is cut to its ZIP5",
        "The ZIP5 of a postal facility locates a building of the postal service, not a "
        "household.",
        op="facility_zip",
    ),
    _free(
        "mail_scan", "operation_code",
        "A USPS operation code names a sorting step.",
    ),
    _free(
        "mail_scan", "mail_class",
        "A mail class is shared by a whole mailing.",
    ),
    _free(
        "mail_scan", "delivery_status",
        "A delivery status is a step of the postal process.",
    ),
)  # fmt: skip

STAMPED: tuple[ColumnRule, ...] = (
    ColumnRule(
        RECORD_TABLES, "tenant_id", "the API key of the request (never the body)", "kept", (),
        "the tenant the key belongs to",
        "The tenant is the organisation that sent the data, not a person.",
    ),
    ColumnRule(
        RECORD_TABLES, "policy_version", "the policy in force", "kept", ("version",),
        "the policy's `version`",
        "It names the rules a row was made under, so every row can be audited.",
    ),
    ColumnRule(
        RECORD_TABLES, "key_epoch", "the receive time and the policy", "kept",
        ("identifiers.rotation",),
        "the epoch of the pseudonym key in force: `0`, `2026-11` or `2026-11-25` (`2026-11.g1` "
        "after a manual key rotation)",
        "It names which key made the row's pseudonyms, never the key itself; shredding that "
        "key unlinks them.",
    ),
    ColumnRule(
        RECORD_TABLES, "retention_days", "the tenant's plan", "kept",
        ("retention.days", "retention.plans"),
        "days the row is kept, from the tenant's plan (no plan: `retention.days`); drives the "
        "table's TTL",
        "A number of days says nothing about a person.",
    ),
)  # fmt: skip

# Tables that hold no records: what each column is and why it is not personal data.
_AUDIT = ("policy_audit",)
_OUTCOMES = ("outcomes",)
OTHER_COLUMNS: tuple[ColumnRule, ...] = (
    ColumnRule(
        _AUDIT, "time", "the time of the policy change", "kept", (),
        "when the change was put in force",
        "It dates a configuration change, not a person's action on the tenant's services.",
    ),
    ColumnRule(
        _AUDIT, "tenant_id", "the tenant whose policy changed", "kept", (),
        "the tenant id",
        "The tenant is an organisation, not a person.",
    ),
    ColumnRule(
        _AUDIT, "actor", "the API key that made the change", "pseudonymized", (),
        "the key id: the first 12 hex digits of the key's SHA-256, or `file` / `startup`",
        "It names an API key, never the key itself or a person; the key is high-entropy, so its "
        "digest cannot be reversed.",
    ),
    ColumnRule(
        _AUDIT, "source", "how the change arrived", "kept", (),
        "`startup`, `file` (reload) or `api`",
        "A channel name says nothing about a person.",
    ),
    ColumnRule(
        _AUDIT, "old_version", "the policy replaced", "kept", (),
        "its `version`",
        "A version number says nothing about a person.",
    ),
    ColumnRule(
        _AUDIT, "new_version", "the policy put in force", "kept", (),
        "its `version`",
        "A version number says nothing about a person.",
    ),
    ColumnRule(
        _AUDIT, "diff", "the two policies", "kept", (),
        "one `setting: old -> new` line per changed setting",
        "Policy settings describe rules, not people.",
    ),
    ColumnRule(
        _OUTCOMES, "tenant_id", "the tenant that sent the records", "kept", (),
        "the tenant id",
        "The tenant is an organisation, not a person.",
    ),
    ColumnRule(
        _OUTCOMES, "hour", "when the records were received", "generalized", (),
        "the hour of receipt (UTC); rows kept 90 days",
        "An hour of a whole tenant's traffic dates no one's action.",
    ),
    ColumnRule(
        _OUTCOMES, "kind", "the record kind", "kept", (),
        "`access_log`, `device`, `event`, `mail_scan`, `otlp_unmapped`; `otlp` for an OTLP "
        "request refused whole",
        "A record kind says nothing about a person.",
    ),
    ColumnRule(
        _OUTCOMES, "outcome", "what became of the records", "kept", (),
        "`accepted`, `rejected`, `filtered` (dropped by consent rules), `failed` (not stored), "
        "`rate_limited` or `refused` (a request refused whole, counted once)",
        "An outcome name says nothing about a person.",
    ),
    ColumnRule(
        _OUTCOMES, "reason", "why", "kept", (),
        "a code from a fixed set (`unknown_field`, `invalid_value`, a consent reason...), "
        "never a value",
        "The codes are fixed by the collector; no input text reaches this column.",
    ),
    ColumnRule(
        _OUTCOMES, "count", "the records", "kept", (),
        "how many records had this outcome in the hour",
        "A count of a tenant's records says nothing about a person.",
    ),
)  # fmt: skip

# --- derived tables: the daily rollups ---------------------------------------------------------

RollupOperation = Literal[
    "grouped by", "counted", "summed", "sketched (uniqCombined64)", "quantiles"
]  # fmt: skip
ROLLUP_OPERATIONS: tuple[RollupOperation, ...] = (
    "grouped by",
    "counted",
    "summed",
    "sketched (uniqCombined64)",
    "quantiles",
)


@dataclass(frozen=True, slots=True)
class Rollup:
    """A derived table: filled only by one materialized view over one anonymized record table."""

    table: str
    source: str  # the record table the view reads (after anonymization)
    view: str  # the `CREATE MATERIALIZED VIEW ... TO table` that feeds it


@dataclass(frozen=True, slots=True)
class RollupColumn:
    """What one rollup column is made of: which columns of the source table, and how."""

    table: str
    column: str
    sources: tuple[str, ...]  # columns of the rollup's source table; empty: the rows (a count)
    operation: RollupOperation
    how: str
    why: str  # why the stored value is not personal data


ROLLUPS: Mapping[str, Rollup] = MappingProxyType(
    {
        "access_daily": Rollup("access_daily", "access_log", "access_daily_mv"),
        "events_daily": Rollup("events_daily", "usage_events", "events_daily_mv"),
        "mail_daily": Rollup("mail_daily", "mail_scans", "mail_daily_mv"),
        "access_dims_daily": Rollup("access_dims_daily", "access_log", "access_dims_daily_mv"),
        "access_hourly": Rollup("access_hourly", "access_log", "access_hourly_mv"),
    }
)

# What holds for every rollup row; the doc lists these above the rollup tables.
ROLLUP_NOTES: tuple[str, ...] = (
    "Rollups hold nothing the anonymized tables do not: each is filled only by a materialized "
    "view over a record table, from rows already anonymized.",
    "Distinct counts are stored as uniqCombined64 sketches of pseudonyms and daily visitor ids, "
    "never the ids: a sketch holds 64-bit hashes of them (a HyperLogLog estimate once there are "
    "many), which cannot be reversed or enumerated; only an approximate number can be read.",
    "Reports (`GET /v1/reports/{name}`) read the rollups and are k-anonymous: a group is shown "
    "only when it holds at least k distinct subjects; smaller groups of a day are merged into "
    "`(other)`, itself shown only when it reaches k.",
    "Each rollup row keeps the `retention_days` of the rows it summarises and expires that many "
    "days after its day (`TTL day + retention_days`), so no later than those rows.",
    "A data-subject deletion rebuilds the affected days of every rollup fed from the table the "
    "rows were deleted from, so the subject no longer counts in any sketch or count.",
)

_AS_STORED = "the source column as stored"


def _group(
    table: str, column: str, why: str, source: str = "", how: str = _AS_STORED
) -> RollupColumn:
    return RollupColumn(table, column, (source or column,), "grouped by", how, why)


def _common(table: str) -> tuple[RollupColumn, ...]:
    """The group keys every rollup has: tenant, day and retention."""
    return (
        _group(table, "tenant_id", "The tenant is the organisation that sent the data, not a "
               "person."),
        _group(table, "day", "A day is shared by everything that happened on it.",
               source="time", how="the UTC day of `time`; the time of day is not kept"),
        _group(table, "retention_days", "A number of days says nothing about a person.",
               how="the source rows' `retention_days`; drives the rollup's TTL, so a rollup row "
               "expires no later than the rows it summarises"),
    )  # fmt: skip


def _sketch(table: str, column: str, source: str, what: str) -> RollupColumn:
    return RollupColumn(
        table, column, (source,), "sketched (uniqCombined64)",
        f"a uniqCombined64 sketch of the group's non-empty {what}; only an approximate number "
        "of distinct values can be read from it",
        "A sketch holds only 64-bit hashes of pseudonyms (or an estimate of their number), "
        "which cannot be reversed or enumerated, and reports show its count only for groups of "
        "at least k subjects.",
    )  # fmt: skip


def _count(table: str, column: str, what: str) -> RollupColumn:
    return RollupColumn(
        table, column, (), "counted", f"the number of {what} in the group",
        "A count per group says how many, never which or whose.",
    )  # fmt: skip


_A, _E, _M = "access_daily", "events_daily", "mail_daily"
_D, _H = "access_dims_daily", "access_hourly"
# the access_log columns the breakdown dimensions are read from (sql/0011_report_rollups.sql)
_DIMENSION_SOURCES = (
    "service",
    "route",
    "query",
    "status",
    "referrer_host",
    "geo_country",
    "geo_region",
    "browser_family",
    "os_family",
    "is_mobile",
    "is_tablet",
    "is_pc",
    "is_bot",
)
ROLLUP_COLUMNS: tuple[RollupColumn, ...] = (
    # access_daily <- access_log
    *_common(_A),
    _group(_A, "service", "The tenant's own service name says nothing about the visitor."),
    _group(_A, "host", "The requested site belongs to the tenant, not to the visitor."),
    _group(_A, "route", "A route template is shared by every request to that kind of page.",
           how="the route template (never the path or query)"),
    _group(_A, "status_class", "A status class describes the response, not the person.",
           source="status", how="the status's hundreds: `2xx`, `4xx`, ... (no status: empty)"),
    _group(_A, "browser_family", "A browser family is shared by many people."),
    _group(_A, "os_family", "An OS family is shared by many people."),
    _group(_A, "device_family", "A device family is shared by many devices."),
    _group(_A, "geo_country", "A country is shared by many people; region and city are not "
           "carried into the rollup."),
    _group(_A, "is_bot", "Whether a client is a bot says nothing about a person."),
    _count(_A, "requests", "requests"),
    RollupColumn(
        _A, "bytes", ("bytes",), "summed", "the sum of the response sizes in the group",
        "A total of response sizes per group describes the pages, not a person.",
    ),
    _sketch(_A, "visitors", "visitor_id", "daily visitor ids"),
    _sketch(_A, "users", "user_pseudonym", "user pseudonyms"),
    RollupColumn(
        _A, "duration_ms", ("duration_ms",), "quantiles",
        "the state of the group's 50th, 90th and 99th percentiles of `duration_ms` (a sample "
        "of its values)",
        "Percentiles of server time over a group describe the server, not a person.",
    ),
    # events_daily <- usage_events
    *_common(_E),
    _group(_E, "event", "An event name is defined by the tenant's product, not by the person."),
    _group(_E, "feature", "A feature name is defined by the tenant's product, not by the "
           "person."),
    _group(_E, "action", "An action name is defined by the tenant's product, not by the "
           "person."),
    _count(_E, "events", "events"),
    RollupColumn(
        _E, "identified", ("user_pseudonym",), "counted",
        "the number of events in the group that carry a user pseudonym",
        "A count of identified events says how many there were, never whose.",
    ),
    _sketch(_E, "users", "user_pseudonym", "user pseudonyms"),
    # mail_daily <- mail_scans
    *_common(_M),
    _group(_M, "mailer_id", "The mailer id names the business that sent the mail, not its "
           "recipient."),
    _group(_M, "zip3", "A ZIP3 area holds tens of thousands of households.",
           source="routing_zip", how="the first three digits of the stored routing ZIP "
           "(empty when `mail.routing_zip` stores none)"),
    _group(_M, "event", "A scan event is a step of the postal process."),
    _count(_M, "scans", "scans"),
    _sketch(_M, "pieces", "serial_pseudonym", "mail-piece serial pseudonyms"),
    # access_dims_daily <- access_log: one row per day, dimension and value
    *_common(_D),
    RollupColumn(
        _D, "dimension", _DIMENSION_SOURCES, "grouped by",
        "the name of the report dimension the row belongs to (`pages`, `browsers`, ...)",
        "A dimension's name is a constant of the schema.",
    ),
    RollupColumn(
        _D, "value", _DIMENSION_SOURCES, "grouped by",
        "one dimension's value: the route template, referrer host, an allow-listed utm_* "
        "parameter of the kept query, country, country-region, browser, OS or device family, "
        "device type, status code or service",
        "Each value is one column the anonymized row already holds, shared by everyone with that "
        "value; reports show a value only when at least k subjects have it.",
    ),
    _group(_D, "is_bot", "Whether a client is a bot says nothing about a person."),
    _group(_D, "extension", "A file extension (`css`, `png`) describes the resource, not the "
           "person.", source="path", how="the lower-cased extension of the stored path's last "
           "segment (up to 8 letters or digits; else empty)"),
    _count(_D, "requests", "requests"),
    _sketch(_D, "visitors", "visitor_id", "daily visitor ids"),
    _sketch(_D, "users", "user_pseudonym", "user pseudonyms"),
    # access_hourly <- access_log: the totals per hour
    _group(_H, "tenant_id", "The tenant is the organisation that sent the data, not a person."),
    _group(_H, "hour", "An hour is shared by everything that happened in it.", source="time",
           how="the UTC hour of `time`; minutes and seconds are not kept"),
    _group(_H, "retention_days", "A number of days says nothing about a person.",
           how="the source rows' `retention_days`; drives the rollup's TTL"),
    _group(_H, "is_bot", "Whether a client is a bot says nothing about a person."),
    _group(_H, "extension", "A file extension (`css`, `png`) describes the resource, not the "
           "person.", source="path", how="the lower-cased extension of the stored path's last "
           "segment (up to 8 letters or digits; else empty)"),
    _count(_H, "requests", "requests"),
    RollupColumn(
        _H, "errors", ("status",), "counted", "the number of requests answered 5xx",
        "A count of failed requests describes the server, not a person.",
    ),
    _sketch(_H, "visitors", "visitor_id", "daily visitor ids"),
    _sketch(_H, "users", "user_pseudonym", "user pseudonyms"),
    RollupColumn(
        _H, "duration_ms", ("duration_ms",), "quantiles",
        "the state of the hour's 50th and 95th percentiles of `duration_ms` (a sample of its "
        "values)",
        "Percentiles of server time over an hour describe the server, not a person.",
    ),
)  # fmt: skip


def rollup_columns(table: str) -> tuple[RollupColumn, ...]:
    return tuple(c for c in ROLLUP_COLUMNS if c.table == table)


# Every policy key, in the order `anonymizer.policy.policy_settings` lists them.
POLICY_KEYS: tuple[str, ...] = tuple(policy_settings(default_policy()))
# Keys that act on whole records rather than on a field's column.
RECORD_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "version": "stamped on every row as policy_version",
        "records.unknown_fields": "a record with a field no rule names is rejected (`reject`) or "
        "stored without that field (`drop`)",
        "consent.analytics_without_consent": "a usage event without analytics consent keeps no "
        "identifiers (`strip_identifiers`) or is not stored (`drop`)",
        "reports.min_k": "the reports API (`GET /v1/reports/...`): a group of fewer distinct "
        'subjects is merged into "(other)" or suppressed; no caller may ask for a smaller k',
        "reports.asset_extensions": "the reports API: a request whose path ends in one of these "
        "extensions is a static asset, not a pageview (nothing stored changes)",
    }
)


def rules_for(kind: KindName) -> tuple[FieldRule, ...]:
    return tuple(r for r in RULES if r.kind == kind)


def input_fields(kind: KindName) -> tuple[str, ...]:
    """The fields a record of `kind` may carry, in table order (any other field has no rule)."""
    return tuple(dict.fromkeys(r.field for r in rules_for(kind)))


def rules_governed_by(key: str) -> tuple[FieldRule | ColumnRule, ...]:
    """The rules a policy key changes."""
    every: tuple[FieldRule | ColumnRule, ...] = (*RULES, *STAMPED, *OTHER_COLUMNS)
    return tuple(r for r in every if key in r.policy_keys)


def _bare(key: str) -> str:
    ok = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if ok else _toml(key)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_bare(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def setting_values(policy: Policy) -> dict[str, str]:
    """Every setting of `policy` (defaults included) as TOML text, keyed by `section.key`."""
    return {key: _toml(value) for key, value in policy_settings(policy).items()}
