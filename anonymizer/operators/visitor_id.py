"""A cookieless visitor id: keyed hash of address and user agent under a one-day salt."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.operators.operator import Applied, Finish, Operator, Outcome, Row, Sample, Step
from anonymizer.policy import Policy
from anonymizer.pseudonym import COARSE_MARK, DAY_MS, coarse_visitor_id, daily_visitor_id
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext

_FAMILIES = ("browser_family", "os_family", "device_family")  # "" where a table has none


class VisitorId(Operator):
    """Made of two fields (`ip` and `user_agent`, a rule each): bound once per kind."""

    name: ClassVar[str] = "visitor_id"
    policy_keys: ClassVar[tuple[str, ...]] = (
        "identifiers.visitor_id",
        "identifiers.late_window_hours",
        "identifiers.late_visitor_id",
    )

    def bind(self, rule: FieldRule, policy: Policy) -> Step | None:
        if policy.identifiers.visitor_id != "daily":
            return None
        (column,) = rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            # empty when the record's day salt is gone: a salt is never recreated for a past day
            ip = record.ip
            if ip is not None:
                salt = ctx.visitor_salts.get(record.time_ms // DAY_MS)
                if salt:
                    row[column] = daily_visitor_id(
                        salt, ctx.tenant_id, ip.packed, record.user_agent
                    )

        return step

    def finish(self, policy: Policy, table: str) -> Finish | None:
        """A record without a daily visitor id because its day's salt is gone (the policy's
        `late_window_hours` over) gets the policy's fallback subject: with `late_visitor_id =
        "coarse"`, a per-day hash of columns the row stores anyway (address prefix, client
        families), so backfilled traffic still reaches k in reports. Runs on the finished row,
        before the detectors' pass (registry order), as the columns it reads are then written."""
        ids = policy.identifiers
        if ids.visitor_id != "daily" or ids.late_visitor_id != "coarse":
            return None

        def late(row: Row) -> Row:
            # "" (not absent): a table with a visitor id whose day salt is gone; no address, none
            if row.get("visitor_id") == "" and row.get("ip_prefix"):
                day = round(row["time"] * 1000) // DAY_MS  # time_ms / 1000, exactly back
                families = (row.get(c, "") for c in _FAMILIES)
                row["visitor_id"] = coarse_visitor_id(
                    row["tenant_id"], day, row["ip_prefix"], *families
                )
            return row

        return late

    def describe(self, rule: FieldRule, policy: Policy) -> Applied:
        if policy.identifiers.visitor_id == "none":
            how = "no visitor id is made: the column stays empty"
            return Applied("dropped", how, "identifiers.visitor_id")
        return super().describe(rule, policy)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if key == "identifiers.late_window_hours":
            hours = new.identifiers.late_window_hours
            return f"a day's visitor salt is kept {hours} h after the day for late records"
        if key == "identifiers.late_visitor_id":
            if new.identifiers.late_visitor_id == "none":
                return "records after their day's salt is gone get no visitor id"
            return "records after their day's salt is gone get a coarse per-day visitor id"
        if new.identifiers.visitor_id == "none":
            return "no visitor id is stored any more"
        return "a cookieless visitor id, linkable within one day only, is now stored"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        if not sample.row["visitor_id"]:
            return Outcome("dropped", "no address: no visitor id")
        if sample.row["visitor_id"].startswith(COARSE_MARK):
            return Outcome("pseudonymized", "late: coarse per-day id of prefix + client families")
        return Outcome(
            "pseudonymized", "of address + user agent, under the demo salt for the record's day"
        )
