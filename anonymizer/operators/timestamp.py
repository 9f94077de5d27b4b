"""Store a record's time, to the millisecond (the `DateTime64(3)` column takes seconds)."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Operator, Row, Step
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext


class Time(Operator):
    name: ClassVar[str] = "time"

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        (column,) = rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            row[column] = record.time_ms / 1000

        return step
