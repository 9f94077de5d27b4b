"""Generalize a user agent to browser, OS and device families (parsed at enrichment)."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Operator, Outcome, Row, Sample, Step, copier
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext

# A device sent without a user agent claims no browser family (the parser's default "Other");
# an access log's row has always kept that default.
_NO_AGENT_NO_FAMILY = frozenset({"device"})


class UserAgent(Operator):
    """The parse itself is enrichment (the collector's, cached); this stores the parsed
    dimensions the rule names (columns named as `UserAgentInfo`'s fields), never the string."""

    name: ClassVar[str] = "user_agent"

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        copy = copier({c: c for c in rule.columns})  # named as `UserAgentInfo`'s fields
        unclaimed = rule.kind in _NO_AGENT_NO_FAMILY and "browser_family" in rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            copy(e.user_agent, row)
            if unclaimed and not record.user_agent:
                row["browser_family"] = ""

        return step

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        return Outcome("generalized", "user-agent parsing not run here")
