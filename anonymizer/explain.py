"""`explain`: what the policy does to each field of one raw record, and to a policy change.

The row shown is made by the real row builder (the operators bound under the policy), so an
explanation cannot describe rules other than the ones in force. Two things differ from ingest,
and the explanation says so: pseudonyms and visitor ids are made under a fixed demo key and salt,
and no enrichment runs (no GeoIP database, no user-agent parsing), so those columns show their
empty defaults.

Raw JSON becomes a typed record and then a row through the kind registry (`anonymizer.kinds`),
the very validator and row builder the collector runs. What a rule does under the policy, and
what was done to each field, is said by the operator the rule names (`FieldRule.op`: `describe`,
`outcome`), and what a policy change means by the operator that owns the key (`effect`, see
`anonymizer.operators.registry`).
Values of personal fields are masked: an explanation never repeats an address or identifier.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from anonymizer.errors import RecordInvalid
from anonymizer.kinds import Record
from anonymizer.operators.operator import Sample, split_target
from anonymizer.operators.registry import by_name, describe, effect
from anonymizer.policy import Policy, diff_settings, parse_policy
from anonymizer.pseudonym import DAY_MS, PseudonymKey
from anonymizer.rules import (
    KINDS,
    POLICY_KEYS,
    STAMPED,
    ColumnRule,
    FieldRule,
    KindName,
    Operator,
    input_fields,
    rules_for,
    rules_governed_by,
    setting_values,
)
from anonymizer.types import (
    AccessRecord,
    Enrichment,
    EventRecord,
    MailScanRecord,
    TenantContext,
)
from anonymizer.url import split_url
from anonymizer.validate import TimeWindow

DEMO_KEY = PseudonymKey("explain", bytes(32))
DEMO_SALT = bytes(32)
DEMO_TENANT_ID = "demo"
NOTES = (
    'Pseudonyms are made under a fixed demo key (epoch "explain") and visitor ids under a demo '
    "salt, not a tenant's: they show the form of the output and match no stored row.",
    "Enrichment is not run: no GeoIP lookup and no user-agent parsing, so the geo and "
    "browser/OS/device columns show their empty defaults.",
    "Values of personal fields are masked in the input column; the row is what would be stored.",
)

Row = dict[str, Any]


# Any time is accepted and a missing one reads as 0: the collector's retention window and receive
# time depend on the tenant and the moment, which an explanation does not have.
_ANY_TIME = TimeWindow(now_ms=0, oldest_ms=-(2**62), newest_ms=2**62)


def to_record(kind: KindName, raw: Mapping[str, Any]) -> Record:
    """The typed record the collector builds from `raw`, by the kind's own validator; unknown
    fields are left out here (the collector rejects them; `explain` reports them).
    Raises `RecordInvalid`."""
    fields = KINDS[kind].fields
    record: Record = KINDS[kind].validate({k: v for k, v in raw.items() if k in fields}, _ANY_TIME)
    return record


def demo_context(time_ms: int) -> TenantContext:
    """The demo tenant: fixed key, a salt for the record's day, no plan."""
    return TenantContext(DEMO_TENANT_ID, "", DEMO_KEY, {time_ms // DAY_MS: DEMO_SALT})


def _row(policy: Policy, kind: KindName, record: Record) -> tuple[Row | None, str]:
    """The kind's real row builder, under the demo context and with no enrichment."""
    return KINDS[kind].build(policy, demo_context(record.time_ms), record, Enrichment())


# --- the explanation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldExplanation:
    """What happened to one input field (or one part of it) of this record."""

    field: str  # `ip`, or `ip (geo)` for one part of a field
    input: str  # masked when the field is personal
    operator: Operator
    rule: str  # the deciding policy key(s), "fixed rule", or "no rule: ..."
    columns: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StampedExplanation:
    column: str
    value: Any
    rule: str
    note: str


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


class _Explainer:
    """Resolves each rule of the kind against one record and its row."""

    def __init__(self, policy: Policy, kind: KindName, raw: Mapping[str, Any]) -> None:
        self.policy = policy
        self.kind = kind
        self.raw = raw
        self.record = to_record(kind, raw)
        self.row, self.reason = _row(policy, kind, self.record)
        self.host, self.target = "", ""
        if isinstance(self.record, AccessRecord):
            self.host, self.target = self.record.host, self.record.path
        elif isinstance(self.record, EventRecord):
            self.host, self.target = split_url(self.record.url)
        self.sample = (
            None
            if self.row is None
            else Sample(
                policy, kind, raw, self.record, self.row, self.reason, self.host, self.target
            )
        )

    def present(self, rule: FieldRule) -> bool:
        """Whether the record has the field (and the part) the rule is about."""
        if self.raw.get(rule.field) is None:
            return False
        if rule.part == "query":
            return bool(split_target(self.target)[1])
        if rule.part == "fragment":
            return "#" in self.target
        if rule.part == "host":
            return bool(self.host)
        if rule.part == "routing code":
            return isinstance(self.record, MailScanRecord) and bool(self.record.imb.routing)
        return True

    def shown(self, rule: FieldRule) -> str:
        value = self.raw[rule.field]
        if rule.personal or (rule.field == "host" and self.row and self.row["host"] == "{ip}"):
            if isinstance(value, dict):
                return "{" + ", ".join(f"{k}: {mask(v)}" for k, v in value.items()) + "}"
            return mask(value)
        return _show(value)

    def resolve(self, rule: FieldRule) -> tuple[Operator, str, str]:
        """(operator, rule, detail) of `rule` for this record."""
        if self.row is None:
            return (
                "dropped",
                "consent.analytics_without_consent",
                f"event not stored: {self.reason}",
            )
        a = describe(rule, self.policy)
        if a.operator == "dropped" and a.how != rule.how:  # the policy switched the rule off
            return "dropped", a.rule, a.how
        if not rule.columns:
            return "dropped", a.rule, ""
        operator = by_name(rule.op) if rule.op else None
        out = operator.outcome(rule, self.sample) if operator and self.sample else None
        if out is None:
            return a.operator, a.rule, ""
        return out.operator, out.rule or a.rule, out.detail

    def stamped(self) -> tuple[StampedExplanation, ...]:
        rotation = setting_values(self.policy)["identifiers.rotation"]
        notes = {
            "tenant_id": "demo tenant; at ingest, the tenant of the API key",
            "policy_version": "",
            "key_epoch": "demo key; at ingest, the epoch of the receive time under "
            f"identifiers.rotation = {rotation}",
            "retention_days": "no plan; at ingest, from the tenant's plan",
        }
        row = self.row or {}
        return tuple(
            StampedExplanation(s.column, row.get(s.column), s.rule, notes.get(s.column, ""))
            for s in STAMPED
        )


def explain(policy: Policy, kind: KindName, record_json: Mapping[str, Any]) -> Explanation:
    """What `policy` does to each field of `record_json`, and the row it stores.

    Raises `RecordInvalid` for a value the collector would reject. A field no rule names is
    reported as dropped: the collector rejects the record for it, or drops the field when the
    policy has `[records] unknown_fields = "drop"`."""
    if kind not in KINDS:
        raise RecordInvalid("", f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if not isinstance(record_json, Mapping):
        raise RecordInvalid("", "record must be a JSON object")
    e = _Explainer(policy, kind, record_json)
    fields: list[FieldExplanation] = []
    keys = {k for s in STAMPED for k in s.policy_keys}
    for rule in rules_for(kind):
        if e.present(rule):
            operator, rule_text, detail = e.resolve(rule)
            label, shown = rule.label, e.shown(rule)
            fields.append(FieldExplanation(label, shown, operator, rule_text, rule.columns, detail))
            keys.update(rule.policy_keys)
    unknown = [str(name)[:64] for name in record_json if name not in input_fields(kind)]
    notes = list(NOTES)
    if unknown:
        keys.add("records.unknown_fields")
        if policy.unknown_fields == "drop":
            why = 'no rule: dropped (records.unknown_fields = "drop")'
        else:
            why = "no rule: the collector rejects unknown fields"
            notes.append("The collector would reject this record: " + ", ".join(unknown) + ".")
        fields += [FieldExplanation(n, mask(record_json[n]), "dropped", why, ()) for n in unknown]
    if record_json.get("time") is None:
        notes.append("No time: the collector stamps the receive time; 0 is shown here.")
    settings = setting_values(policy)
    return Explanation(
        kind=kind,
        table=KINDS[kind].table,
        policy_version=policy.version,
        fields=tuple(fields),
        stamped=e.stamped(),
        settings=tuple((k, settings[k]) for k in POLICY_KEYS if k in keys),
        row=e.row,
        notes=tuple(notes),
    )


# --- rendering ---------------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, tuple("-" * w for w in widths), *rows]
    ]


def render_text(ex: Explanation) -> str:
    """The field table, details, stamped columns, settings used and notes, then the row."""
    lines = [f"{ex.kind} record -> table {ex.table}, policy version {ex.policy_version}", ""]
    lines += _table(
        ("field", "input", "operator", "rule", "output columns"),
        [(f.field, f.input, f.operator, f.rule, ", ".join(f.columns) or "-") for f in ex.fields],
    )
    details = [f"  {f.field}: {f.detail}" for f in ex.fields if f.detail]
    if details:
        lines += ["", "details:", *details]
    stamped = [(s.column, json.dumps(s.value), s.rule, s.note) for s in ex.stamped]
    lines += ["", "stamped on every row:"]
    lines += ["  " + line for line in _table(("column", "value", "rule", "note"), stamped)]
    lines += ["", "policy settings used:", *(f"  {k} = {v}" for k, v in ex.settings)]
    lines += ["", "notes:", *(f"  - {n}" for n in ex.notes), ""]
    if ex.row is None:
        lines.append("row: none (the record is not stored)")
    else:
        lines += [f"row ({ex.table}):", json.dumps(ex.row, indent=2, ensure_ascii=False)]
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
            {"column": s.column, "value": s.value, "rule": s.rule, "note": s.note}
            for s in ex.stamped
        ],
        "settings": dict(ex.settings),
        "row": ex.row,
        "notes": list(ex.notes),
    }


# --- policy diff -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingChange:
    """One setting that differs between two policies, and what that change alone does."""

    key: str
    old: str
    new: str
    effect: str
    affected: tuple[str, ...]  # `kind.field -> table.columns: operator` lines


def policy_text(values: Mapping[str, str]) -> str:
    """A policy file from `section.key -> TOML value` settings (see `setting_values`)."""
    lines = [f"{k} = {v}" for k, v in values.items() if "." not in k]
    sections: dict[str, list[str]] = {}
    for k, v in values.items():
        section, dot, name = k.partition(".")
        if dot:
            sections.setdefault(section, []).append(f"{name} = {v}")
    for section, body in sections.items():
        lines += ["", f"[{section}]", *body]
    return "\n".join(lines) + "\n"


def _affected(key: str, old: Policy, new: Policy) -> tuple[str, ...]:
    """What changing only `key` does to each rule it governs."""
    only = parse_policy(policy_text({**setting_values(old), key: setting_values(new)[key]}))
    lines = []
    for rule in rules_governed_by(key):
        if isinstance(rule, ColumnRule):
            lines.append(f"{rule.column} on every row of every record table")
            continue
        before, after = describe(rule, old).operator, describe(rule, only).operator
        if before == after == "dropped" or (key == "identifiers.fields" and before == after):
            continue
        change = f"{before} -> {after}" if before != after else after
        target = f"{KINDS[rule.kind].table}.{', '.join(rule.columns) or '-'}"
        lines.append(f"{rule.kind}.{rule.label} -> {target}: {change}")
    return tuple(lines)


def explain_diff(old: Policy, new: Policy) -> tuple[SettingChange, ...]:
    """Each setting that differs (as the audit log lists them), with what that change alone does
    to which fields and columns."""
    a, b = setting_values(old), setting_values(new)
    return tuple(
        SettingChange(key, a[key], b[key], effect(key, old, new), _affected(key, old, new))
        for key, _, _ in diff_settings(old, new)
    )


def render_diff(changes: tuple[SettingChange, ...]) -> str:
    if not changes:
        return "no differences\n"
    out = []
    for c in changes:
        out += [f"{c.key}: {c.old} -> {c.new}", f"  {c.effect}"]
        out += [f"    {line}" for line in c.affected]
    return "\n".join(out) + "\n"
