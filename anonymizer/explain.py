"""`explain`: what the policy does to each field of one raw record, and to a policy change.

The row shown is made by the real anonymize functions, so an explanation cannot describe rules
that are not the ones in force. Two things differ from ingest, and the explanation says so:
pseudonyms are made under a fixed demo key, and no enrichment runs (no GeoIP database, no
user-agent parsing), so those columns show their empty defaults.

Raw JSON becomes a typed record through a small strict converter that mirrors the collector's
validators (the anonymizer must not import the collector; tests check the two agree). Values of
personal fields are masked in every explanation: it must never repeat an address or identifier.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anonymizer.anonymize import (
    anonymize_access,
    anonymize_device,
    anonymize_event,
    anonymize_mail_scan,
)
from anonymizer.consent import CATEGORIES, consent_decision
from anonymizer.errors import InvalidValueError
from anonymizer.imb import ImbError, parse_imb
from anonymizer.ip import parse_ip
from anonymizer.policy import Policy
from anonymizer.pseudonym import PseudonymKey
from anonymizer.rules import (
    FIXED_RULE,
    KINDS,
    POLICY_KEYS,
    STAMPED,
    FieldRule,
    KindName,
    Operator,
    StampRule,
    applied,
    input_fields,
    policy_settings,
    rules_for,
    rules_governed_by,
)
from anonymizer.types import (
    AccessRecord,
    ClientIp,
    Consent,
    DeviceRecord,
    Enrichment,
    EventRecord,
    MailScanRecord,
    TenantContext,
)
from anonymizer.url import scrub_host, split_url

DEMO_KEY = PseudonymKey("explain", bytes(32))
DEMO_TENANT = TenantContext("demo", "", DEMO_KEY)
NO_RULE = "no rule: the collector rejects unknown fields"
NOTES = (
    'Pseudonyms are made under a fixed demo key (epoch "explain"), not a tenant\'s key: they '
    "show the form of the output and match no stored row.",
    "Enrichment is not run: no GeoIP lookup and no user-agent parsing, so the geo and "
    "browser/OS/device columns show their empty defaults.",
    "Input values of personal fields are masked; the row is what would be stored.",
)

Record = AccessRecord | DeviceRecord | EventRecord | MailScanRecord
Row = dict[str, Any]


class RecordInvalid(InvalidValueError):
    """A raw record the collector would reject; names the field and reason, never the value."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


# --- raw JSON -> typed record (mirrors collector/records.py, devices.py, events.py, ...) ------

_EPOCH_SECONDS_LIMIT = 100_000_000_000  # below: epoch seconds; above: milliseconds
_PROPERTY_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
MAX_PROPERTIES = 64


def _time(raw: Mapping[str, Any]) -> int:
    """Epoch ms; absent: 0 (the collector stamps the receive time, not knowable here). The
    collector also rejects times outside the tenant's retention window; explain does not."""
    value = raw.get("time")
    if value is None:
        return 0
    if isinstance(value, bool):
        raise RecordInvalid("time", "must be an RFC 3339 string or epoch seconds/milliseconds")
    if isinstance(value, int | float):
        return int(value * 1000) if abs(value) < _EPOCH_SECONDS_LIMIT else int(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise RecordInvalid("time", "not an RFC 3339 time") from None
        if dt.tzinfo is None:
            raise RecordInvalid("time", "RFC 3339 time needs an offset (Z or +hh:mm)")
        return int(dt.timestamp() * 1000)
    raise RecordInvalid("time", "must be an RFC 3339 string or epoch seconds/milliseconds")


def _string(raw: Mapping[str, Any], name: str, limit: int) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordInvalid(name, "must be a string")
    if len(value) > limit:
        raise RecordInvalid(name, f"longer than {limit} characters")
    return value


def _required(raw: Mapping[str, Any], name: str, limit: int) -> str:
    value = _string(raw, name, limit)
    if not value:
        raise RecordInvalid(name, "is required")
    return value


def _identifier(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _string(raw, name, 256)


def _integer(raw: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    value = raw.get(name)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordInvalid(name, "must be a whole number")
    if not lo <= value <= hi:
        raise RecordInvalid(name, f"must be from {lo} to {hi}")
    return value


def _ip(raw: Mapping[str, Any], required: bool) -> ClientIp | None:
    text = raw.get("ip")
    if text is None or text == "":
        if required:
            raise RecordInvalid("ip", "is required")
        return None
    if not isinstance(text, str):
        raise RecordInvalid("ip", "must be a string")
    try:
        return parse_ip(text)
    except InvalidValueError:
        raise RecordInvalid("ip", "not an IP address") from None


def _access(raw: Mapping[str, Any]) -> AccessRecord:
    ip = _ip(raw, required=True)
    assert ip is not None
    method = _string(raw, "method", 16)
    if method and not method.isalpha():
        raise RecordInvalid("method", "must be an HTTP method name")
    path = _string(raw, "path", 8192)
    host = _string(raw, "host", 255)
    if "://" in path:  # absolute-form request target (proxies)
        authority, path = split_url(path)
        host = host or authority
    duration = raw.get("duration_ms")
    if duration is not None and (
        not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0
    ):
        raise RecordInvalid("duration_ms", "must be a number >= 0")
    status = _integer(raw, "status", 0, 999)
    if status and not 100 <= status <= 599:
        raise RecordInvalid("status", "must be an HTTP status from 100 to 599")
    return AccessRecord(
        time_ms=_time(raw),
        ip=ip,
        method=method.upper(),
        host=host,
        path=path,
        status=status,
        bytes=_integer(raw, "bytes", 0, 2**63 - 1),
        duration_ms=float(duration) if duration is not None else None,
        referrer=_string(raw, "referrer", 4096),
        user_agent=_string(raw, "user_agent", 2048),
        user_id=_identifier(raw, "user_id"),
        session_id=_identifier(raw, "session_id"),
        service=_string(raw, "service", 64),
    )


def _device(raw: Mapping[str, Any]) -> DeviceRecord:
    device_id = _identifier(raw, "device_id")
    if not device_id:
        raise RecordInvalid("device_id", "is required")
    return DeviceRecord(
        time_ms=_time(raw),
        device_id=device_id,
        user_id=_identifier(raw, "user_id"),
        manufacturer=_string(raw, "manufacturer", 64),
        model=_string(raw, "model", 128),
        os=_string(raw, "os", 64),
        os_version=_string(raw, "os_version", 32),
        app_version=_string(raw, "app_version", 32),
        screen=_string(raw, "screen", 32),
        locale=_string(raw, "locale", 35),
        ip=_ip(raw, required=False),
        user_agent=_string(raw, "user_agent", 2048),
    )


def _properties(raw: Mapping[str, Any]) -> tuple[tuple[str, str | int | float | bool], ...]:
    props = raw.get("properties")
    if props is None:
        return ()
    if not isinstance(props, dict):
        raise RecordInvalid("properties", "must be an object of string, number or boolean values")
    if len(props) > MAX_PROPERTIES:
        raise RecordInvalid("properties", f"more than {MAX_PROPERTIES} properties")
    out: list[tuple[str, str | int | float | bool]] = []
    for key, value in props.items():
        if not (
            0 < len(key) <= 64
            and (key[0].isascii() and (key[0].isalpha() or key[0] == "_"))
            and set(key) <= _PROPERTY_KEY_CHARS
        ):
            raise RecordInvalid(
                "properties", "keys must be names of letters, digits and _.:- (<= 64)"
            )
        if isinstance(value, dict | list):
            raise RecordInvalid(f"properties.{key}", "nested values are not allowed: flatten the map")
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise RecordInvalid(f"properties.{key}", "must be a string, number or boolean")
        if isinstance(value, str) and len(value) > 512:
            raise RecordInvalid(f"properties.{key}", "longer than 512 characters")
        out.append((key, value))
    return tuple(out)


def _flag(raw: Mapping[str, Any], name: str) -> bool:
    value = raw.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):  # the DNT and Sec-GPC headers are "1"
        return value in (1, "1")
    raise RecordInvalid(name, "must be true or false")


def _consent(raw: Mapping[str, Any]) -> Consent:
    value = raw.get("consent")
    categories: frozenset[str] | None = None
    if value is not None:
        if isinstance(value, str):
            value = [c.strip() for c in value.split(",") if c.strip()]
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise RecordInvalid("consent", "must be a list of categories")
        if set(value) - CATEGORIES:
            raise RecordInvalid("consent", "categories are essential, analytics, preference")
        categories = frozenset(value)
    return Consent(categories, _flag(raw, "gpc"), _flag(raw, "dnt"))


def _event(raw: Mapping[str, Any]) -> EventRecord:
    return EventRecord(
        time_ms=_time(raw),
        event=_required(raw, "event", 128),
        feature=_string(raw, "feature", 128),
        action=_string(raw, "action", 128),
        user_id=_identifier(raw, "user_id"),
        session_id=_identifier(raw, "session_id"),
        url=_string(raw, "url", 8192),
        properties=_properties(raw),
        consent=_consent(raw),
    )


def _mail_scan(raw: Mapping[str, Any]) -> MailScanRecord:
    try:
        imb = parse_imb(_required(raw, "imb", 80))
    except ImbError as e:
        raise RecordInvalid("imb", str(e)) from None
    facility = _string(raw, "facility_zip", 10).replace("-", "")
    if facility and (not facility.isdigit() or len(facility) not in (5, 9)):
        raise RecordInvalid("facility_zip", "must be a 5-digit ZIP or ZIP+4")
    return MailScanRecord(
        time_ms=_time(raw),
        imb=imb,
        event=_string(raw, "event", 64),
        facility_zip=facility[:5],
        operation_code=_string(raw, "operation_code", 16),
        mail_class=_string(raw, "mail_class", 32),
        delivery_status=_string(raw, "delivery_status", 64),
    )


def to_record(kind: KindName, raw: Mapping[str, Any]) -> Record:
    """The typed record the collector would build from `raw`; unknown fields are ignored here
    (the collector rejects them; `explain` reports them). Raises `RecordInvalid`."""
    known = {k: v for k, v in raw.items() if k in input_fields(kind)}
    if kind == "access_log":
        return _access(known)
    if kind == "device":
        return _device(known)
    if kind == "event":
        return _event(known)
    return _mail_scan(known)


def _row(policy: Policy, kind: KindName, record: Record) -> tuple[Row | None, str]:
    """The real anonymize function of the kind, under the demo key and with no enrichment."""
    if isinstance(record, AccessRecord):
        return anonymize_access(policy, DEMO_TENANT, record, Enrichment()), ""
    if isinstance(record, DeviceRecord):
        return anonymize_device(policy, DEMO_TENANT, record, Enrichment()), ""
    if isinstance(record, EventRecord):
        return anonymize_event(policy, DEMO_TENANT, record)
    return anonymize_mail_scan(policy, DEMO_TENANT, record), ""


# --- the explanation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldExplanation:
    """What happened to one input field (or one part of it) of this record."""

    field: str  # `ip`, or `ip (geo)` for one part of a field
    input: str  # masked when the field is personal
    operator: Operator
    rule: str  # the governing policy key(s), "fixed rule", or NO_RULE
    columns: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StampedExplanation:
    column: str
    value: Any
    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class Explanation:
    kind: KindName
    table: str
    policy_version: int
    fields: tuple[FieldExplanation, ...]
    stamped: tuple[StampedExplanation, ...]
    settings: tuple[tuple[str, str], ...]  # the policy settings the rules above used
    row: Row | None  # None: the policy drops the record
    notes: tuple[str, ...]


def mask(value: Any) -> str:
    """First character and `***`: enough to recognise a sample, never the value itself."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:1] + "***" if len(text) > 1 else "***"


def _show(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_target(target: str) -> tuple[str, str, str]:
    """(path, query, fragment) of a request target."""
    rest, _, fragment = target.partition("#")
    path, _, query = rest.partition("?")
    return path, query, fragment


def _target(kind: KindName, record: Record) -> tuple[str, str]:
    """(host, request target) of the URL-like field of a record."""
    if isinstance(record, AccessRecord):
        return record.host, record.path
    if isinstance(record, EventRecord):
        return split_url(record.url)
    return "", ""


def _placeholders(before: str, after: str) -> str:
    b, a = before.split("/"), after.split("/")
    replaced = [y for x, y in zip(b, a, strict=False) if x != y]
    return ", ".join(dict.fromkeys(replaced))


def _query_detail(query: str, kept_query: str) -> tuple[Operator, str]:
    names = [pair.partition("=")[0] for pair in query.split("&") if pair]
    kept = [pair.partition("=")[0] for pair in kept_query.split("&") if pair]
    dropped = [n for n in names if n not in kept]
    parts = []
    if dropped:
        parts.append("dropped " + ", ".join(dict.fromkeys(dropped)))
    if kept:
        parts.append("kept " + ", ".join(kept))
    redacted = [p.partition("=")[0] for p in kept_query.split("&") if "={" in p]
    if redacted:
        parts.append("values replaced: " + ", ".join(redacted))
    op: Operator = "dropped" if dropped else "redacted" if redacted else "kept"
    return op, "; ".join(parts)


class _Explainer:
    """Resolves each rule of the kind against one record and its row."""

    def __init__(self, policy: Policy, kind: KindName, raw: Mapping[str, Any]) -> None:
        self.policy = policy
        self.kind = kind
        self.raw = raw
        self.record = to_record(kind, raw)
        self.row, self.reason = _row(policy, kind, self.record)
        self.host, self.target = _target(kind, self.record)

    def present(self, rule: FieldRule) -> bool:
        if self.raw.get(rule.field) is None:
            return False
        path, query, fragment = _split_target(self.target)
        if rule.field in ("path", "url"):
            present = {"query": bool(query), "fragment": "#" in self.target, "host": bool(self.host)}
            return present.get(rule.part, True)
        if rule.part == "routing code":
            return isinstance(self.record, MailScanRecord) and bool(self.record.imb.routing)
        return True

    def shown(self, rule: FieldRule) -> str:
        value = self.raw[rule.field]
        if rule.personal:
            if isinstance(value, dict):
                return "{" + ", ".join(f"{k}: {mask(v)}" for k, v in value.items()) + "}"
            return mask(value)
        if rule.field == "host" and self.row is not None and self.row["host"] == "{ip}":
            return mask(value)
        return _show(value)

    def resolve(self, rule: FieldRule) -> tuple[Operator, str, str]:
        """(operator, rule text, detail) for this record."""
        if self.row is None:
            return "dropped", "consent.analytics_without_consent", f"event not stored ({self.reason})"
        row = self.row
        op, how = applied(rule, self.policy)
        if op == "dropped":
            key = "identifiers.fields" if rule.identifier else rule.rule
            return "dropped", key, how if rule.columns else ""
        if rule.identifier:
            if self.kind == "event" and self.reason:
                return (
                    "dropped",
                    "consent.analytics_without_consent",
                    f"identifiers stripped ({self.reason})",
                )
            return "pseudonymized", "identifiers.fields", ""
        resolver = getattr(self, "_" + (rule.part or rule.field).replace(" ", "_"), None)
        if resolver is not None:
            result: tuple[Operator, str] = resolver(rule, row)
            return result[0], rule.rule, result[1]
        return op, rule.rule, ""

    # One method per field or part whose operator depends on the record.
    def _ip(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        prefix = row["ip_prefix"]
        bits = int(prefix.rpartition("/")[2])
        full = 32 if row["ip_version"] == 4 else 128
        if bits >= full:
            return "kept", f"a /{bits} prefix keeps the whole IPv{row['ip_version']} address"
        return "truncated", f"cut to /{bits}"

    def _geo(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        return "generalized", f"down to {self.policy.geo.granularity}; GeoIP not run here"

    def _family(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        return "generalized", f"IPv{row['ip_version']}"

    def _host(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        stored = row["url_host"] if self.kind == "event" else row["host"]
        return ("redacted", "an IP literal") if stored == "{ip}" else ("kept", "")

    def _path(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        before = _split_target(self.target)[0]
        after = row["url_path"] if self.kind == "event" else row["path"]
        detail = ""
        if self.kind == "access_log" and "://" in str(self.raw.get("path", "")):
            detail = "absolute-form target: its host is the host column"
        if before == after:
            return "kept", detail
        replaced = f"segments replaced by {_placeholders(before, after)}"
        return "redacted", f"{detail}; {replaced}" if detail else replaced

    def _url(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        return self._path(rule, row)

    def _query(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        kept = row["url_query"] if self.kind == "event" else row["query"]
        return _query_detail(_split_target(self.target)[1], kept)

    def _referrer(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        host = row["referrer_host"]
        if not host:
            return "dropped", "not an absolute URL: nothing stored"
        return ("redacted", "an IP literal") if host == "{ip}" else ("truncated", "host only")

    def _user_agent(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        return "generalized", "user-agent parsing not run here"

    def _properties(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        replaced = [k for k, v in row["properties"].items() if v.startswith("{") and v.endswith("}")]
        if not replaced:
            return "kept", ""
        return "redacted", "values replaced: " + ", ".join(replaced)

    def _consent_outcome(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        if row["identifiers_stripped"]:
            return "generalized", f"identifiers stripped ({row['consent_reason']})"
        return "generalized", "analytics consent given: identifiers kept"

    _consent = _gpc = _dnt = _consent_outcome

    def _routing_code(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        assert isinstance(self.record, MailScanRecord)
        routing = self.record.imb.routing
        if row["routing_zip"] == routing:
            return "kept", ""
        return "truncated", f"{len(routing)} digits cut to {len(row['routing_zip'])}"

    def _facility_zip(self, rule: FieldRule, row: Row) -> tuple[Operator, str]:
        raw = str(self.raw["facility_zip"]).replace("-", "")
        return ("truncated", "ZIP+4 cut to ZIP5") if len(raw) > 5 else ("kept", "")

    def stamped(self) -> tuple[StampedExplanation, ...]:
        settings = policy_settings(self.policy)
        details = {
            "tenant_id": "demo tenant; at ingest, the tenant of the API key",
            "policy_version": "",
            "key_epoch": "demo key; at ingest, the epoch of the receive time under "
            f"identifiers.rotation = {settings['identifiers.rotation']}",
            "retention_days": "no plan; at ingest, from the tenant's plan",
        }
        row = self.row or {}
        return tuple(
            StampedExplanation(s.column, row.get(s.column), s.rule, details[s.column])
            for s in STAMPED
        )


def explain(policy: Policy, kind: KindName, record_json: Mapping[str, Any]) -> Explanation:
    """What `policy` does to each field of `record_json`, and the row it stores.

    Raises `RecordInvalid` when the collector would reject the record for a bad value; an
    unknown field is reported as dropped (the collector rejects the whole record for it)."""
    if kind not in KINDS:
        raise RecordInvalid("", f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if not isinstance(record_json, Mapping):
        raise RecordInvalid("", "record must be a JSON object")
    e = _Explainer(policy, kind, record_json)
    fields: list[FieldExplanation] = []
    keys: list[str] = []
    for rule in rules_for(kind):
        if not e.present(rule):
            continue
        operator, rule_text, detail = e.resolve(rule)
        fields.append(
            FieldExplanation(rule.label, e.shown(rule), operator, rule_text, rule.columns, detail)
        )
        keys.extend(rule.policy_keys)
    unknown = [name for name in record_json if name not in input_fields(kind)]
    fields.extend(
        FieldExplanation(str(name)[:64], mask(record_json[name]), "dropped", NO_RULE, ())
        for name in unknown
    )
    notes = list(NOTES)
    if unknown:
        notes.append(
            "The collector would reject this record: unknown field(s) "
            + ", ".join(str(n)[:64] for n in unknown)
            + "."
        )
    if record_json.get("time") is None:
        notes.append("No time: the collector stamps the receive time; 0 is shown here.")
    settings = policy_settings(e.policy)
    used = [k for k in POLICY_KEYS if k in keys or k in ("version", "retention.days")]
    return Explanation(
        kind=kind,
        table=KINDS[kind].table,
        policy_version=policy.version,
        fields=tuple(fields),
        stamped=e.stamped(),
        settings=tuple((k, settings[k]) for k in used),
        row=e.row,
        notes=tuple(notes),
    )


# --- rendering ---------------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, tuple("-" * w for w in widths), *rows]
    ]


def render_text(ex: Explanation) -> str:
    """An aligned table per field, the stamped columns, the settings used, notes, then the row."""
    lines = [f"{ex.kind} record -> table {ex.table}, policy version {ex.policy_version}", ""]
    lines += _table(
        ("field", "input", "operator", "rule", "output columns"),
        [(f.field, f.input, f.operator, f.rule, ", ".join(f.columns) or "-") for f in ex.fields],
    )
    details = [f"  {f.field}: {f.detail}" for f in ex.fields if f.detail]
    if details:
        lines += ["", "details:", *details]
    lines += ["", "stamped on every row:"]
    lines += [
        "  " + line
        for line in _table(
            ("column", "value", "rule", "note"),
            [(s.column, json.dumps(s.value), s.rule, s.detail) for s in ex.stamped],
        )
    ]
    lines += ["", "policy settings used:", *(f"  {k} = {v}" for k, v in ex.settings)]
    lines += ["", "notes:", *(f"  - {n}" for n in ex.notes)]
    lines += ["", f"row ({ex.table}):" if ex.row is not None else "row: none (not stored)"]
    if ex.row is not None:
        lines.append(json.dumps(ex.row, indent=2, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def to_json(ex: Explanation) -> dict[str, Any]:
    """The explanation as plain JSON data (`--json`)."""
    return {
        "kind": ex.kind,
        "table": ex.table,
        "policy_version": ex.policy_version,
        "fields": [
            {
                "field": f.field,
                "input": f.input,
                "operator": f.operator,
                "rule": f.rule,
                "columns": list(f.columns),
                "detail": f.detail,
            }
            for f in ex.fields
        ],
        "stamped": [
            {"column": s.column, "value": s.value, "rule": s.rule, "note": s.detail}
            for s in ex.stamped
        ],
        "settings": dict(ex.settings),
        "row": ex.row,
        "notes": list(ex.notes),
    }


# --- policy diff -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingChange:
    """One setting that differs between two policies, and what it changes."""

    key: str
    old: str
    new: str
    effect: str
    affected: tuple[str, ...]  # `kind.field -> columns: operator` lines


_GEO_ORDER = ("none", "country", "region", "city")
_ZIP_ORDER = ("none", "zip3", "zip5")
_ROTATION_SPAN = {"daily": "a day", "monthly": "a month", "never": "all time (until shredded)"}


def _finer(old: int, new: int) -> str:
    return "finer: more identifying" if new > old else "coarser: less identifying"


def _listed(values: str) -> list[str]:
    loaded: list[str] = json.loads(values)
    return loaded


def _effect(key: str, old: Policy, new: Policy, a: str, b: str) -> str:
    """One sentence on what changing `key` from `a` to `b` means (values as TOML text)."""
    if key == "version":
        return f"new rows are stamped policy_version = {b}"
    if key in ("ip.ipv4_prefix", "ip.ipv6_prefix"):
        v = key[4]
        return f"IPv{v} addresses are stored as /{b} networks instead of /{a} ({_finer(int(a), int(b))})"
    if key == "geo.granularity":
        o, n = old.geo.granularity, new.geo.granularity
        return f"location is kept down to {n} instead of {o} ({_finer(_GEO_ORDER.index(o), _GEO_ORDER.index(n))})"
    if key == "identifiers.fields":
        added = sorted(new.identifiers.fields - old.identifiers.fields)
        removed = sorted(old.identifiers.fields - new.identifiers.fields)
        parts = []
        if added:
            parts.append("now pseudonymized (was dropped): " + ", ".join(added))
        if removed:
            parts.append("now dropped (was pseudonymized): " + ", ".join(removed))
        return "; ".join(parts)
    if key == "identifiers.rotation":
        o, n = old.identifiers.rotation, new.identifiers.rotation
        return (
            f"a pseudonym links one person's rows across {_ROTATION_SPAN[n]} instead of "
            f"{_ROTATION_SPAN[o]}; new rows get a new key epoch, so their pseudonyms do not "
            "match older rows'"
        )
    if key in ("url.keep_query_params", "url.redact"):
        oa, nb = _listed(a), _listed(b)
        added = [x for x in nb if x not in oa]
        removed = [x for x in oa if x not in nb]
        what = "query parameters" if key == "url.keep_query_params" else "redaction rules"
        on, off = ("now kept", "now dropped") if what == "query parameters" else ("added", "removed")
        parts = [f"{what} {on}: " + ", ".join(added)] if added else []
        parts += [f"{what} {off}: " + ", ".join(removed)] if removed else []
        direction = "more identifying" if (added if on == "now kept" else removed) else ""
        return "; ".join(parts) + (f" ({direction})" if direction else "")
    if key == "mail.routing_zip":
        o, n = old.mail.routing_zip, new.mail.routing_zip
        return f"the IMb routing code is kept as {n} instead of {o} ({_finer(_ZIP_ORDER.index(o), _ZIP_ORDER.index(n))})"
    if key == "consent.analytics_without_consent":
        if new.consent.analytics_without_consent == "drop":
            return "usage events without analytics consent (or with GPC / DNT honoured) are no longer stored at all"
        return "usage events without analytics consent (or with GPC / DNT honoured) are now stored with their identifiers stripped"
    if key in ("consent.honour_gpc", "consent.honour_dnt"):
        signal = "GPC" if key.endswith("gpc") else "DNT"
        if b == "true":
            return f"the {signal} signal is now honoured (consent.analytics_without_consent applies)"
        return f"the {signal} signal is now ignored: analytics consent alone decides (less protective)"
    if key == "retention.days":
        return f"rows of tenants without a plan are kept {b} days instead of {a}"
    o_plans, n_plans = dict(old.retention.plans), dict(new.retention.plans)
    parts = []
    for plan in dict.fromkeys([*o_plans, *n_plans]):
        if plan not in n_plans:
            parts.append(f"plan {plan} removed (its tenants fall back to retention.days)")
        elif plan not in o_plans:
            parts.append(f"plan {plan} added: {n_plans[plan]} days")
        elif o_plans[plan] != n_plans[plan]:
            parts.append(f"plan {plan}: {o_plans[plan]} -> {n_plans[plan]} days")
    return "; ".join(parts)


def _affected(key: str, old: Policy, new: Policy) -> tuple[str, ...]:
    lines = []
    for rule in rules_governed_by(key):
        if isinstance(rule, StampRule):
            lines.append(f"{rule.column} on every table")
            continue
        before, after = applied(rule, old)[0], applied(rule, new)[0]
        if key == "identifiers.fields" and before == after:
            continue
        change = f"{before} -> {after}" if before != after else after
        target = ", ".join(rule.columns) or "-"
        lines.append(f"{rule.kind}.{rule.label} -> {KINDS[rule.kind].table}.{target}: {change}")
    return tuple(lines)


def explain_diff(old: Policy, new: Policy) -> tuple[SettingChange, ...]:
    """Each setting that differs, in policy-file order, with its effect on fields and columns."""
    a, b = policy_settings(old), policy_settings(new)
    return tuple(
        SettingChange(key, a[key], b[key], _effect(key, old, new, a[key], b[key]), _affected(key, old, new))
        for key in POLICY_KEYS
        if a[key] != b[key]
    )


def render_diff(changes: tuple[SettingChange, ...]) -> str:
    if not changes:
        return "no differences\n"
    out = []
    for c in changes:
        out.append(f"{c.key}: {c.old} -> {c.new}")
        out.append(f"  {c.effect}")
        out += [f"    {line}" for line in c.affected]
    return "\n".join(out) + "\n"


__all__ = [
    "FIXED_RULE",
    "Explanation",
    "FieldExplanation",
    "RecordInvalid",
    "SettingChange",
    "explain",
    "explain_diff",
    "render_diff",
    "render_text",
    "to_json",
    "to_record",
]
