"""Generalize the redacted path to its route template (`/orders/{id}/items`)."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import (
    Operator,
    Outcome,
    Row,
    Sample,
    Step,
    placeholders,
    split_target,
)
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule, rules_for
from anonymizer.types import Enrichment, TenantContext
from anonymizer.url import route_template


class Route(Operator):
    """Made from the stored (redacted) path: the column the field's `url_path` rule writes,
    which runs before it."""

    name: ClassVar[str] = "route"

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        (path,) = next(
            r.columns for r in rules_for(rule.kind) if r.field == rule.field and r.op == "url_path"
        )
        (column,) = rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            row[column] = route_template(row[path])

        return step

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        before = split_target(sample.target)[0]
        after = sample.row["url_route" if sample.kind == "event" else "route"]
        if before == after:
            return Outcome("kept")
        return Outcome("generalized", "segments grouped as " + placeholders(before, after))
