"""Truncate a postal facility's ZIP+4 to its ZIP5 (a fixed rule)."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Operator, Outcome, Row, Sample, Step, field_of
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext


class FacilityZip(Operator):
    """The value parser already holds it as its ZIP5 (`validate.parse_mail_scan` cuts the
    ZIP+4 as it checks the digits); this stores it."""

    name: ClassVar[str] = "facility_zip"

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        zip5, (column,) = field_of(rule), rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            row[column] = zip5(record)

        return step

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        sent = str(sample.raw["facility_zip"]).replace("-", "")
        return Outcome("truncated", "ZIP+4 cut to ZIP5") if len(sent) > 5 else Outcome("kept")
