"""A cookieless visitor id: keyed hash of address and user agent under a one-day salt."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample
from anonymizer.policy import Policy
from anonymizer.pseudonym import COARSE_MARK
from anonymizer.rules import FieldRule


class VisitorId(Operator):
    name: ClassVar[str] = "visitor_id"
    policy_keys: ClassVar[tuple[str, ...]] = (
        "identifiers.visitor_id",
        "identifiers.late_window_hours",
        "identifiers.late_visitor_id",
    )

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if key == "identifiers.late_window_hours":
            hours = new.identifiers.late_window_hours
            return f"a day's visitor salt is kept {hours} h after the day for late records"
        if key == "identifiers.late_visitor_id":
            if new.identifiers.late_visitor_id == "none":
                return "records after their day's salt is gone get no visitor id"
            return "records after their day's salt is gone get a coarse per-day visitor id"
        if new.identifiers.visitor_id == "none":
            return "no visitor id is stored any more"
        return "a cookieless visitor id, linkable within one day only, is now stored"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        if not sample.row["visitor_id"]:
            return Outcome("dropped", "no address: no visitor id")
        if sample.row["visitor_id"].startswith(COARSE_MARK):
            return Outcome("pseudonymized", "late: coarse per-day id of prefix + client families")
        return Outcome(
            "pseudonymized", "of address + user agent, under the demo salt for the record's day"
        )
