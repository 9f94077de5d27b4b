"""Generalize the redacted path to its route template (`/orders/{id}/items`)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample, placeholders, split_target
from anonymizer.rules import FieldRule


class Route(Operator):
    name: ClassVar[str] = "route"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        before = split_target(sample.target)[0]
        after = sample.row["url_route" if sample.kind == "event" else "route"]
        if before == after:
            return Outcome("kept")
        return Outcome("generalized", "segments grouped as " + placeholders(before, after))
