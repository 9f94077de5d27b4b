"""Replace what the detectors find in free text by its placeholder, or reject the record
(`pii.action`, `pii.fields`, `pii.digits`)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule


class Pii(Operator):
    name: ClassVar[str] = "pii"
    policy_keys: ClassVar[tuple[str, ...]] = ("pii.action", "pii.fields", "pii.digits")

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
        """A free-text field: kept as sent unless a detector replaced something in it."""
        (column,) = rule.columns
        if sample.row[column] == sample.raw.get(column):
            return Outcome("kept")
        return Outcome("redacted", "personal data replaced by its placeholder")
