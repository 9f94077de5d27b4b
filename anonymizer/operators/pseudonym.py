"""Replace an identifier by a keyed pseudonym (`identifiers.fields`, `identifiers.rotation`)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample, set_change
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule

_ROTATION_SPAN = {"daily": "a day", "monthly": "a month", "never": "all time (until shredded)"}


class Pseudonym(Operator):
    name: ClassVar[str] = "pseudonym"
    policy_keys: ClassVar[tuple[str, ...]] = ("identifiers.fields", "identifiers.rotation")

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
