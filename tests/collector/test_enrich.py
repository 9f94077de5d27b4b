from pathlib import Path

import pytest

from anonymizer.ip import parse_ip
from collector.enrich import GeoIp, UserAgentParser
from collector.errors import ConfigError
from tests.conftest import USER_AGENTS

PARSER = UserAgentParser(cache_size=1024)


@pytest.mark.parametrize(
    ("ua", "browser", "major", "os", "flags"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 12_2 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/12.1 Mobile/15E148 Safari/604.1",
            "Mobile Safari", "12", "iOS", (True, False, False, False),
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 9_3_5 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) "
            "Version/9.0 Mobile/13G36 Safari/601.1",
            "Mobile Safari", "9", "iOS", (False, True, False, False),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            "Chrome", "120", "Windows", (False, False, True, False),
        ),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Googlebot", "2", "Other", (False, False, False, True),
        ),
    ],
)  # fmt: skip
def test_known_agents(
    ua: str, browser: str, major: str, os: str, flags: tuple[bool, bool, bool, bool]
) -> None:
    info = PARSER.parse(ua)
    assert (info.browser_family, info.browser_major, info.os_family) == (browser, major, os)
    assert (info.is_mobile, info.is_tablet, info.is_pc, info.is_bot) == flags


def test_empty_agent() -> None:
    assert PARSER.parse("").browser_family == "Other"


def test_corpus_sample_parses_and_classifies() -> None:
    """Every 10th agent of the uap-core corpus parses; the sample has phones, tablets, PCs, bots."""
    sample = USER_AGENTS.read_text().splitlines()[::10]
    assert len(sample) > 1500
    infos = [PARSER.parse(ua) for ua in sample]
    assert sum(i.is_mobile for i in infos) > 100
    assert sum(i.is_tablet for i in infos) > 50
    assert sum(i.is_pc for i in infos) > 30
    assert sum(i.is_bot for i in infos) > 50
    known = sum(i.browser_family != "Other" for i in infos)
    assert known / len(infos) > 0.6
    assert all(len(i.browser_major) <= 10 for i in infos)


def test_cache_hits() -> None:
    p = UserAgentParser(cache_size=8)
    for _ in range(3):
        p.parse("curl/8.0")
    assert p.cache_info().hits == 2


def test_geo_lookup_uses_the_full_address(geo_db: Path) -> None:
    geo = GeoIp(geo_db)
    assert geo.lookup(parse_ip("1.2.3.4")).country == "DE"
    assert geo.lookup(parse_ip("1.2.3.200")).country == "FR"
    assert geo.lookup(parse_ip("::ffff:1.2.3.200")).city == "Paris"
    assert geo.lookup(parse_ip("2001:db8::7")).region == "13"
    assert geo.lookup(parse_ip("9.9.9.9")).country == ""
    geo.close()


def test_geo_cache_answers_as_the_reader_does_and_stays_bounded(geo_db: Path) -> None:
    """Cached answers are the reader's for every address (both halves of the split /24, the
    mapped form, v6, unknown ones), repeats are hits, and the cache never outgrows its size."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    plain, cached = GeoIp(geo_db), GeoIp(geo_db, cache_size=8)
    addresses = st.one_of(
        st.integers(0, 255).map(lambda i: f"1.2.3.{i}"),
        st.integers(0, 255).map(lambda i: f"::ffff:1.2.3.{i}"),
        st.integers(0, 2**16 - 1).map(lambda i: f"2001:db8::{i:x}"),
        st.ip_addresses().map(str),
    )

    @settings(max_examples=400, deadline=None)
    @given(st.lists(addresses, min_size=1, max_size=6))
    def check(batch: list[str]) -> None:
        for text in batch + batch:  # each address twice: the second may be a hit
            ip = parse_ip(text)
            assert cached.lookup(ip) == plain.lookup(ip), text
        assert len(cached._cache) <= 8 and len(cached._answers) <= 9

    check()
    assert cached.cache_hits > 0 and cached.cache_misses > 0
    plain.close()
    cached.close()


def test_geo_cache_holds_no_address(geo_db: Path) -> None:
    """The cache's keys are keyed digests under a key made at start: neither the address's
    bytes nor its text are in them, and another reader (another process) keys differently."""
    one, two = GeoIp(geo_db, cache_size=64), GeoIp(geo_db, cache_size=64)
    texts = ["1.2.3.4", "1.2.3.200", "2001:db8::7", "9.9.9.9"]
    for t in texts:
        one.lookup(parse_ip(t))
        two.lookup(parse_ip(t))
    held = b"".join(one._cache) + repr(one._cache).encode()
    for t in texts:
        ip = parse_ip(t)
        assert ip.packed not in held and t.encode() not in held
    assert not set(one._cache) & set(two._cache)
    one.close()
    two.close()


def test_no_database_means_empty_geo() -> None:
    geo = GeoIp(None)
    assert not geo.enabled and geo.lookup(parse_ip("1.2.3.4")).country == ""


def test_missing_database_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"geoip\.database"):
        GeoIp(tmp_path / "nope.mmdb")
