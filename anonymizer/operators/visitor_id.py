"""A cookieless visitor id: keyed hash of address and user agent under a one-day salt."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Applied, Operator, Outcome, Row, Sample, Step
from anonymizer.policy import Policy
from anonymizer.pseudonym import DAY_MS, daily_visitor_id
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext


class VisitorId(Operator):
    """Made of two fields (`ip` and `user_agent`, a rule each): bound once per kind."""

    name: ClassVar[str] = "visitor_id"
    policy_keys: ClassVar[tuple[str, ...]] = ("identifiers.visitor_id",)

    def bind(self, rule: FieldRule, policy: Policy) -> Step | None:
        if policy.identifiers.visitor_id != "daily":
            return None
        (column,) = rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            # empty when the record's day salt is gone: a salt is never recreated for a past day
            ip = record.ip
            if ip is not None:
                salt = ctx.visitor_salts.get(record.time_ms // DAY_MS)
                if salt:
                    row[column] = daily_visitor_id(
                        salt, ctx.tenant_id, ip.packed, record.user_agent
                    )

        return step

    def describe(self, rule: FieldRule, policy: Policy) -> Applied:
        if policy.identifiers.visitor_id == "none":
            how = "no visitor id is made: the column stays empty"
            return Applied("dropped", how, "identifiers.visitor_id")
        return super().describe(rule, policy)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if new.identifiers.visitor_id == "none":
            return "no visitor id is stored any more"
        return "a cookieless visitor id, linkable within one day only, is now stored"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        if not sample.row["visitor_id"]:
            return Outcome("dropped", "no address: no visitor id")
        return Outcome(
            "pseudonymized", "of address + user agent, under the demo salt for the record's day"
        )
