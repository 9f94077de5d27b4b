"""Replace what the detectors find in event property values by its placeholder."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Operator, Outcome, Row, Sample, Step, field_of
from anonymizer.policy import Policy
from anonymizer.properties import property_text, property_texts
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, EventRecord, TenantContext


class Properties(Operator):
    """Stores the map as text; the detectors then run over its keys and values with every other
    free text of the row (`pii`'s pass), so `pii.action` decides: replace or reject."""

    name: ClassVar[str] = "properties"

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        props, (column,) = field_of(rule), rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            row[column] = property_texts(props(record))

        return step

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        """The properties (by stored key) whose value the detectors found personal data in."""
        assert isinstance(sample.record, EventRecord)
        redact = sample.policy.pii.detectors.redact
        replaced = [
            redact(k)[0] for k, v in sample.record.properties if redact(property_text(v))[1]
        ]
        if not replaced:
            return Outcome("kept")
        return Outcome("redacted", "values replaced: " + ", ".join(replaced))
