"""Generalize an IP address to its family, 4 or 6 (a fixed rule)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample
from anonymizer.rules import FieldRule


class IpFamily(Operator):
    name: ClassVar[str] = "ip_family"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        return Outcome("generalized", f"IPv{sample.row['ip_version']}")
