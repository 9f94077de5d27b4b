"""`geo`: the GeoIP answer (enrichment) is kept no finer than `geo.granularity`."""

import pytest

from anonymizer.ip import parse_ip
from anonymizer.operators.geo import Geo
from anonymizer.types import AccessRecord, Enrichment, GeoInfo
from tests.anonymizer.operators.support import DEFAULT, apply, policy, rule, sample

GEO = rule("access_log", "ip (geo)")
FOUND = Enrichment(geo=GeoInfo("DE", "BE", "Berlin"))
RECORD = AccessRecord(time_ms=0, ip=parse_ip("192.0.2.1"))


@pytest.mark.parametrize(
    ("granularity", "stored"),
    [
        ("city", ("DE", "BE", "Berlin")),
        ("region", ("DE", "BE", "")),
        ("country", ("DE", "", "")),
        ("none", ("", "", "")),
    ],
)
def test_apply_keeps_the_allowed_levels(granularity: str, stored: tuple[str, ...]) -> None:
    p = policy(f'[geo]\ngranularity = "{granularity}"\n')
    row = apply(GEO, RECORD, p, FOUND)
    assert (row["geo_country"], row["geo_region"], row["geo_city"]) == stored


def test_none_binds_no_step_and_is_described_as_dropped() -> None:
    none = policy('[geo]\ngranularity = "none"\n')
    assert Geo().bind(GEO, none) is None
    a = Geo().describe(GEO, none)
    assert (a.operator, a.how, a.rule) == ("dropped", "no location is stored", "geo.granularity")
    assert Geo().describe(GEO, DEFAULT).operator == "generalized"


def test_effect_and_outcome() -> None:
    country = policy('[geo]\ngranularity = "country"\n')
    assert Geo().effect("geo.granularity", DEFAULT, country) == (
        "location is kept down to country instead of city (coarser: less identifying)"
    )
    out = Geo().outcome(GEO, sample("access_log", {"ip": "192.0.2.1"}))
    assert out.detail == "down to city; GeoIP not run here"
