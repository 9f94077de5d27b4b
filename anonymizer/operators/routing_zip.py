"""Truncate an IMb routing code (ZIP+4+delivery point: a household) to `mail.routing_zip`."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Applied, Operator, Outcome, Row, Sample, Step, ordered
from anonymizer.policy import ROUTING_ZIPS, Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, MailScanRecord, TenantContext

_DIGITS = {"none": 0, "zip3": 3, "zip5": 5}


class RoutingZip(Operator):
    name: ClassVar[str] = "routing_zip"
    policy_keys: ClassVar[tuple[str, ...]] = ("mail.routing_zip",)

    def bind(self, rule: FieldRule, policy: Policy) -> Step | None:
        digits = _DIGITS[policy.mail.routing_zip]
        if not digits:
            return None
        (column,) = rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            routing = record.imb.routing  # "", a ZIP5, ZIP+4 or ZIP+4+delivery point
            row[column] = routing[:digits] if len(routing) >= 5 else ""

        return step

    def describe(self, rule: FieldRule, policy: Policy) -> Applied:
        if policy.mail.routing_zip == "none":
            return Applied("dropped", "no part of the routing code is stored", "mail.routing_zip")
        return super().describe(rule, policy)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        z, y = old.mail.routing_zip, new.mail.routing_zip
        return ordered("the IMb routing code is kept as", z, y, ROUTING_ZIPS)

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        assert isinstance(sample.record, MailScanRecord)
        routing, stored = sample.record.imb.routing, sample.row["routing_zip"]
        if stored == routing:
            return Outcome("kept")
        return Outcome("truncated", f"{len(routing)} digits cut to {len(stored)}")
