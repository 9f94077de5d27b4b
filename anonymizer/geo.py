"""Generalize a GeoIP answer to the granularity the policy allows."""

from __future__ import annotations

from typing import Literal

from anonymizer.types import UNKNOWN_GEO, GeoInfo

Granularity = Literal["none", "country", "region", "city"]
GRANULARITIES: tuple[Granularity, ...] = ("none", "country", "region", "city")


def generalize_geo(geo: GeoInfo, granularity: Granularity) -> GeoInfo:
    """Keep the levels at or above `granularity`; finer levels become empty."""
    if granularity == "city":
        return geo
    if granularity == "region":
        return GeoInfo(geo.country, geo.region, "")
    if granularity == "country":
        return GeoInfo(geo.country, "", "")
    return UNKNOWN_GEO
