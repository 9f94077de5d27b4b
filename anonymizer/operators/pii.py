"""Replace what the detectors find in free text by its placeholder, or reject the record
(`pii.action`, `pii.fields`, `pii.digits`)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator
from anonymizer.policy import Policy


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
