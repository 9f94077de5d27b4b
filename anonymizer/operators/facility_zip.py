"""Truncate a postal facility's ZIP+4 to its ZIP5 (a fixed rule)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample
from anonymizer.rules import FieldRule


class FacilityZip(Operator):
    name: ClassVar[str] = "facility_zip"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        sent = str(sample.raw["facility_zip"]).replace("-", "")
        return Outcome("truncated", "ZIP+4 cut to ZIP5") if len(sent) > 5 else Outcome("kept")
