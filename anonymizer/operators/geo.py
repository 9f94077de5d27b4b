"""Generalize an address to a GeoIP location no finer than `geo.granularity`."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.geo import GRANULARITIES, generalize_geo
from anonymizer.operators.operator import Applied, Operator, Outcome, Row, Sample, Step, ordered
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext


class Geo(Operator):
    """The lookup itself is enrichment (the collector's, on the full address in memory); this
    keeps only the levels the policy allows."""

    name: ClassVar[str] = "geo"
    policy_keys: ClassVar[tuple[str, ...]] = ("geo.granularity",)

    def bind(self, rule: FieldRule, policy: Policy) -> Step | None:
        granularity = policy.geo.granularity
        if granularity == "none":
            return None
        country, region, city = rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            geo = generalize_geo(e.geo, granularity)
            row[country], row[region], row[city] = geo.country, geo.region, geo.city

        return step

    def describe(self, rule: FieldRule, policy: Policy) -> Applied:
        if policy.geo.granularity == "none":
            return Applied("dropped", "no location is stored", "geo.granularity")
        return super().describe(rule, policy)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        g, h = old.geo.granularity, new.geo.granularity
        return ordered("location is kept down to", g, h, GRANULARITIES)

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        g = sample.policy.geo.granularity
        return Outcome("generalized", f"down to {g}; GeoIP not run here")
