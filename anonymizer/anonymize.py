"""`policy + record -> row`: the single place where a record becomes storable.

A kind's row is made by the operators its rules name (`anonymizer.rules`, `FieldRule.op`), bound
to those rules under the policy once (`compile_plan`: every setting read then, not per record)
into a `Plan`: the gates that decide whether the record is stored at all, one step per rule that
writes its columns, and the pass over the finished row (the detectors over free text). The row
starts from the table's columns, all empty: an input field reaches storage only through a rule's
operator, so a field the policy does not name is never passed through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from anonymizer.kinds import KINDS, Built, KindName, Row
from anonymizer.operators.operator import Finish, Gate, Step, copy_step

# re-exported: the detectors' pass over a row belongs to the `pii` operator
from anonymizer.operators.pii import FREE_TEXT_SOURCES as FREE_TEXT_SOURCES
from anonymizer.operators.pii import NAMED_COLUMNS as NAMED_COLUMNS
from anonymizer.operators.pii import detect_free_text as detect_free_text
from anonymizer.operators.registry import REGISTERED, by_name
from anonymizer.policy import Policy
from anonymizer.rules import rules_for
from anonymizer.types import (
    AccessRecord,
    DeviceRecord,
    Enrichment,
    EventRecord,
    MailScanRecord,
    TenantContext,
)


class Plan:
    """One kind's row builder under one policy: the operators bound to its rules, in order."""

    __slots__ = ("days_for", "finish", "gates", "steps", "template")

    def __init__(
        self,
        template: Row,
        gates: tuple[Gate, ...],
        steps: tuple[Step, ...],
        finish: Finish,
        days_for: Callable[[str], int],
    ) -> None:
        self.template = template
        self.gates = gates
        self.steps = steps
        self.finish = finish
        self.days_for = days_for

    def build(self, ctx: TenantContext, record: Any, enrichment: Enrichment) -> Built:
        """The row of `record` (None when a gate drops it) and why it was dropped or its
        identifiers stripped ("" when neither). Raises `RecordInvalid` where the policy rejects."""
        row = self.template.copy()
        # stamped on every row (`rules.STAMPED`); policy_version is in the template
        row["tenant_id"] = ctx.tenant_id
        row["key_epoch"] = ctx.key.epoch
        row["retention_days"] = self.days_for(ctx.plan)
        reason = ""
        if self.gates:
            for gate in self.gates:
                stored, reason = gate(record, row)
                if not stored:
                    return None, reason
        for step in self.steps:
            step(record, enrichment, ctx, row)
        return self.finish(row), reason


def _chain(finishes: list[Finish]) -> Finish:
    if len(finishes) == 1:
        return finishes[0]

    def finish(row: Row) -> Row:
        for f in finishes:
            row = f(row)
        return row

    return finish


def compile_plan(policy: Policy, kind: KindName) -> Plan:
    """Bind the operator of every rule of `kind` under `policy`. Rules that share an operator
    and columns (a visitor id made of two fields, the three consent signals) bind it once."""
    k = KINDS[kind]
    gates: list[Gate] = []
    steps: list[Step] = []
    stored: dict[str, str] = {}
    bound: set[tuple[str, tuple[str, ...]]] = set()
    for rule in rules_for(kind):
        if not rule.op or (rule.op, rule.columns) in bound:
            continue
        bound.add((rule.op, rule.columns))
        operator = by_name(rule.op)
        gate = operator.gate(rule, policy)
        if gate is not None:
            gates.append(gate)
        stored.update(operator.stores(rule, policy) or {})
        step = operator.bind(rule, policy)
        if step is not None:
            steps.append(step)
    if stored:
        steps.insert(0, copy_step(stored))
    finishes = [f for op in REGISTERED if (f := op.finish(policy, k.table)) is not None]
    template: Row = dict.fromkeys(k.columns, "")
    template["policy_version"] = policy.version
    return Plan(template, tuple(gates), tuple(steps), _chain(finishes), policy.retention.days_for)


def compile_plans(policy: Policy) -> Mapping[KindName, Plan]:
    """The plan of every kind under `policy` (`anonymizer.kinds.plans` caches them)."""
    return MappingProxyType({kind: compile_plan(policy, kind) for kind in KINDS})


# --- the row of one record of each kind ---------------------------------------------------------


def anonymize_access(
    policy: Policy, ctx: TenantContext, record: AccessRecord, enrichment: Enrichment
) -> dict[str, Any]:
    """The `access_log` row for one record; the full IP and raw identifiers stop here."""
    return _stored(KINDS["access_log"].build(policy, ctx, record, enrichment))


def anonymize_device(
    policy: Policy, ctx: TenantContext, record: DeviceRecord, enrichment: Enrichment
) -> dict[str, Any]:
    """The `device_info` row: the device id becomes a pseudonym, the address a network."""
    return _stored(KINDS["device"].build(policy, ctx, record, enrichment))


def anonymize_event(
    policy: Policy, ctx: TenantContext, record: EventRecord
) -> tuple[dict[str, Any] | None, str]:
    """The `usage_events` row, or None when consent rules drop it; with the consent reason
    (`""` when identifiers are kept)."""
    return KINDS["event"].build(policy, ctx, record, Enrichment())


def anonymize_mail_scan(
    policy: Policy, ctx: TenantContext, record: MailScanRecord
) -> dict[str, Any]:
    """The `mail_scans` row: never the full 31 digits. The mailer id names a business and is kept;
    the serial is pseudonymized; the routing ZIP is cut to ZIP5 or ZIP3 (never ZIP+4 or the
    delivery point, which name a household)."""
    return _stored(KINDS["mail_scan"].build(policy, ctx, record, Enrichment()))


def _stored(built: Built) -> dict[str, Any]:
    row, _ = built
    assert row is not None  # only a gate drops a record, and only events have one
    return row
