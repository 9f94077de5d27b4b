"""Truncate a referrer to its host; an IP literal becomes {ip}."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample
from anonymizer.rules import FieldRule


class Referrer(Operator):
    name: ClassVar[str] = "referrer"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        host = sample.row["referrer_host"]
        if not host:
            return Outcome("dropped", "not an absolute URL: nothing stored")
        if host == "{ip}":
            return Outcome("redacted", "an IP literal")
        return Outcome("truncated", "host only")
