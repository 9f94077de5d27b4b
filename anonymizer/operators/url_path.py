"""Redact the path segments in which a detector finds personal data (`url.redact`)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import (
    Operator,
    Outcome,
    Sample,
    placeholders,
    set_change,
    split_target,
)
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule


class UrlPath(Operator):
    name: ClassVar[str] = "url_path"
    policy_keys: ClassVar[tuple[str, ...]] = ("url.redact",)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        a, b = list(old.url.rules), list(new.url.rules)
        return set_change("redaction rules", a, b, "added", "removed")

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        before = split_target(sample.target)[0]
        after = sample.row["url_path" if sample.kind == "event" else "path"]
        if before == after:
            return Outcome("kept")
        return Outcome("redacted", "segments replaced by " + placeholders(before, after))
