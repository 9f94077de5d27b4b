"""Generalize a user agent to browser, OS and device families (parsed at enrichment)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample
from anonymizer.rules import FieldRule


class UserAgent(Operator):
    name: ClassVar[str] = "user_agent"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        return Outcome("generalized", "user-agent parsing not run here")
