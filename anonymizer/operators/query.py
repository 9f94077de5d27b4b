"""Keep only allow-listed query parameters (`url.keep_query_params`), values redacted."""

from __future__ import annotations

from typing import Any, ClassVar

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
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.rules import Operator as OperatorName
from anonymizer.types import Enrichment, TenantContext


class Query(Operator):
    name: ClassVar[str] = "query"
    policy_keys: ClassVar[tuple[str, ...]] = ("url.keep_query_params",)

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        # the scrubber's memo holds the target the field's `url_path` step just scrubbed
        scrub, target, (column,) = policy.url.scrub_found, target_of(rule), rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            row[column] = scrub(target(record))[1]

        return step

    def describe(self, rule: FieldRule, policy: Policy) -> Applied:
        if not policy.url.keep_query_params:
            how = "the allowlist is empty: every parameter is dropped"
            return Applied("dropped", how, "url.keep_query_params")
        return super().describe(rule, policy)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        a, b = sorted(old.url.keep_query_params), sorted(new.url.keep_query_params)
        return set_change("query parameters", a, b, "now kept", "now dropped")

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        query = split_target(sample.target)[1]
        stored = sample.row["url_query" if sample.kind == "event" else "query"]
        names = [pair.partition("=")[0] for pair in query.split("&") if pair]
        kept = [pair.partition("=")[0] for pair in stored.split("&") if pair]
        dropped = [n for n in dict.fromkeys(names) if n not in kept]
        replaced = [p.partition("=")[0] for p in stored.split("&") if "={" in p]
        parts = ["dropped " + ", ".join(dropped)] if dropped else []
        parts += ["kept " + ", ".join(kept)] if kept else []
        parts += ["values replaced: " + ", ".join(replaced)] if replaced else []
        op: OperatorName = "dropped" if dropped else "redacted" if replaced else "kept"
        return Outcome(op, "; ".join(parts))
