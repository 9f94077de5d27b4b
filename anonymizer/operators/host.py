"""Normalize a host (lower-cased, no port or userinfo); an IP literal becomes {ip}."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Operator, Outcome, Row, Sample, Step, host_of
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext
from anonymizer.url import scrub_host


class Host(Operator):
    name: ClassVar[str] = "host"

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        host, (column,) = host_of(rule), rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            row[column] = scrub_host(host(record))

        return step

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        event = sample.kind == "event"
        stored = sample.row["url_host"] if event else sample.row["host"]
        if stored == "{ip}":
            return Outcome("redacted", "an IP literal")
        notes = ["lower-cased, port dropped"] if stored != sample.host else []
        if event and "@" in str(sample.raw["url"]).partition("://")[2].split("/")[0]:
            notes.append("userinfo dropped")
        return Outcome("kept", "; ".join(notes))
