"""Truncate a referrer to its host; an IP literal becomes {ip}."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Operator, Outcome, Row, Sample, Step, field_of
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext
from anonymizer.url import referrer_host


class Referrer(Operator):
    name: ClassVar[str] = "referrer"

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        referrer, (column,) = field_of(rule), rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            row[column] = referrer_host(referrer(record))

        return step

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        host = sample.row["referrer_host"]
        if not host:
            return Outcome("dropped", "not an absolute URL: nothing stored")
        if host == "{ip}":
            return Outcome("redacted", "an IP literal")
        return Outcome("truncated", "host only")
