"""Replace what the detectors find in event property values by its placeholder."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample
from anonymizer.rules import FieldRule


class Properties(Operator):
    name: ClassVar[str] = "properties"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        props = sample.row["properties"]
        replaced = [k for k, v in props.items() if v[:1] == "{" and v[-1:] == "}"]
        if not replaced:
            return Outcome("kept")
        return Outcome("redacted", "values replaced: " + ", ".join(replaced))
