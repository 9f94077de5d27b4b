"""Strip the identifiers of (or drop) a usage event without analytics consent, GPC or DNT."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.consent import consent_decision
from anonymizer.operators.operator import Gate, Operator, Outcome, Row, Sample
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule

_NO_CONSENT = "usage events without analytics consent (or with GPC / DNT honoured)"


class Consent(Operator):
    """A gate: it decides for the whole record (stored, stripped of identifiers or dropped)
    before any field is made. Its three rules (consent, gpc, dnt) share it."""

    name: ClassVar[str] = "consent"
    policy_keys: ClassVar[tuple[str, ...]] = (
        "consent.analytics_without_consent",
        "consent.honour_gpc",
        "consent.honour_dnt",
    )

    def gate(self, rule: FieldRule, policy: Policy) -> Gate:
        settings = policy.consent
        stripped, why = rule.columns  # identifiers_stripped, consent_reason

        def gate(record: Any, row: Row) -> tuple[bool, str]:
            decision, reason = consent_decision(settings, record.consent)
            if decision == "drop":
                return False, reason
            row[stripped], row[why] = decision != "keep", reason
            return True, reason

        return gate

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if key == "consent.analytics_without_consent":
            if new.consent.analytics_without_consent == "drop":
                return f"{_NO_CONSENT} are no longer stored at all"
            return f"{_NO_CONSENT} are now stored, with their identifiers stripped"
        if key == "consent.honour_gpc":
            signal, honoured = "GPC", new.consent.honour_gpc
        else:
            signal, honoured = "DNT", new.consent.honour_dnt
        if honoured:
            return f"the {signal} signal is now honoured: consent.analytics_without_consent applies"
        return f"the {signal} signal is now ignored: analytics consent alone decides"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        if sample.row["identifiers_stripped"]:
            return Outcome("generalized", f"identifiers stripped: {sample.row['consent_reason']}")
        return Outcome("generalized", "analytics consent given: identifiers kept")
