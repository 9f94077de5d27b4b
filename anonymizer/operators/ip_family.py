"""Generalize an IP address to its family, 4 or 6 (a fixed rule)."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Operator, Outcome, Row, Sample, Step, field_of
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext


class IpFamily(Operator):
    name: ClassVar[str] = "ip_family"

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        address, (column,) = field_of(rule), rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            ip = address(record)
            row[column] = ip.version if ip is not None else 0

        return step

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        return Outcome("generalized", f"IPv{sample.row['ip_version']}")
