"""Replace an identifier by a keyed pseudonym (`identifiers.fields`, `identifiers.rotation`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from anonymizer.operators.operator import (
    Applied,
    Operator,
    Outcome,
    Row,
    Sample,
    Step,
    field_of,
    set_change,
)
from anonymizer.policy import Policy
from anonymizer.pseudonym import pseudonymize
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext

_ROTATION_SPAN = {"daily": "a day", "monthly": "a month", "never": "all time (until shredded)"}
# What is pseudonymized when it is not the field itself: a serial is unique only per mailer.
_VALUE: dict[str, Callable[[Any], str]] = {
    "imb.serial": lambda record: record.imb.mailer_id + record.imb.serial
}


class Pseudonym(Operator):
    name: ClassVar[str] = "pseudonym"
    policy_keys: ClassVar[tuple[str, ...]] = ("identifiers.fields", "identifiers.rotation")

    def bind(self, rule: FieldRule, policy: Policy) -> Step | None:
        """Dropped (None) unless the policy lists the identifier; a rule that consent also
        governs makes its pseudonym only when the consent gate (run first) kept identifiers."""
        identifier = rule.identifier
        if identifier not in policy.identifiers.fields:
            return None
        value, (column,) = _VALUE.get(identifier) or field_of(rule), rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            row[column] = pseudonymize(ctx.key, identifier, value(record))

        if "consent.analytics_without_consent" not in rule.policy_keys:
            return step

        def with_consent(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            if not row["identifiers_stripped"]:
                row[column] = pseudonymize(ctx.key, identifier, value(record))

        return with_consent

    def describe(self, rule: FieldRule, policy: Policy) -> Applied:
        if rule.identifier not in policy.identifiers.fields:
            how = f"{rule.identifier} is not in identifiers.fields: the column stays empty"
            return Applied("dropped", how, "identifiers.fields")
        return super().describe(rule, policy)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if key == "identifiers.fields":
            a, b = sorted(old.identifiers.fields), sorted(new.identifiers.fields)
            on, off = "now pseudonymized (were dropped)", "now dropped (were pseudonymized)"
            return set_change("identifiers", a, b, on, off)
        r, s = old.identifiers.rotation, new.identifiers.rotation
        return (
            f"a pseudonym links one person's rows across {_ROTATION_SPAN[s]} instead of "
            f"{_ROTATION_SPAN[r]}; new rows get a new key epoch, so their pseudonyms do not "
            "match older rows'"
        )

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        if sample.kind == "event" and sample.reason:
            detail = f"identifiers stripped: {sample.reason}"
            return Outcome("dropped", detail, "consent.analytics_without_consent")
        return Outcome("pseudonymized", "", "identifiers.fields")
