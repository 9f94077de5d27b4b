"""Generalize an address to a GeoIP location no finer than `geo.granularity`."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.geo import GRANULARITIES
from anonymizer.operators.operator import Operator, Outcome, Sample, ordered
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule


class Geo(Operator):
    name: ClassVar[str] = "geo"
    policy_keys: ClassVar[tuple[str, ...]] = ("geo.granularity",)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        g, h = old.geo.granularity, new.geo.granularity
        return ordered("location is kept down to", g, h, GRANULARITIES)

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        g = sample.policy.geo.granularity
        return Outcome("generalized", f"down to {g}; GeoIP not run here")
