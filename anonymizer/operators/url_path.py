"""Redact the path segments in which a detector finds personal data (`url.redact`)."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.detectors import PLACEHOLDERS
from anonymizer.operators.operator import (
    Applied,
    Operator,
    Outcome,
    Row,
    Sample,
    Step,
    set_change,
    split_target,
    target_of,
)
from anonymizer.operators.pii import refuse
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext


class UrlPath(Operator):
    name: ClassVar[str] = "url_path"
    policy_keys: ClassVar[tuple[str, ...]] = ("url.redact",)

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        """Where `pii` rejects for the field, personal data found anywhere in the target (path
        or a kept query value) rejects the record."""
        scrub, target, (column,) = policy.url.scrub_found, target_of(rule), rule.columns
        field, reject = rule.field, policy.pii.action_for(rule.field) == "reject"

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            path, _, found = scrub(target(record))
            if found and reject:
                raise refuse(field, found)
            row[column] = path

        return step

    def describe(self, rule: FieldRule, policy: Policy) -> Applied:
        if not policy.url.rules:
            return Applied("kept", "url.redact is empty: every segment is kept", "url.redact")
        return super().describe(rule, policy)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        a, b = list(old.url.rules), list(new.url.rules)
        return set_change("redaction rules", a, b, "added", "removed")

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        """The placeholders the scrubber put in for what it found, segment by segment."""
        findings = sample.policy.url.path_findings(sample.target)
        found = [PLACEHOLDERS[f] for f in findings if f]  # type: ignore[index]
        if found:
            return Outcome("redacted", "segments replaced by " + ", ".join(dict.fromkeys(found)))
        path = split_target(sample.target)[0]
        if ";" in path:
            return Outcome("redacted", "`;` parameters dropped")
        return Outcome("kept")
