import pytest

from anonymizer.errors import RecordInvalid
from collector.combined import parse_clf_time, parse_combined
from tests.conftest import ACCESS_LOG


def test_every_corpus_line_parses() -> None:
    lines = ACCESS_LOG.read_text().splitlines()
    assert len(lines) == 10_000
    records = [parse_combined(line) for line in lines]
    assert all(r["ip"] and r["time"] for r in records)


def test_fields() -> None:
    line = (
        '83.149.9.216 - bob [17/May/2015:10:05:03 +0000] "GET /a/b.png?x=1 HTTP/1.1" 200 203023 '
        '"http://semicomplete.com/p/" "Mozilla/5.0 (Macintosh)"'
    )
    assert parse_combined(line) == {
        "ip": "83.149.9.216",
        "time": 1431857103000,
        "method": "GET",
        "path": "/a/b.png?x=1",
        "status": 200,
        "bytes": 203023,
        "user_id": "bob",
        "referrer": "http://semicomplete.com/p/",
        "user_agent": "Mozilla/5.0 (Macintosh)",
    }


def test_common_log_format_and_dashes() -> None:
    r = parse_combined('10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.0" 304 -')
    assert r == {
        "ip": "10.0.0.1",
        "time": 1431857103000,
        "method": "GET",
        "path": "/",
        "status": 304,
    }


def test_truncated_user_agent_is_kept() -> None:
    r = parse_combined(
        '1.1.1.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "Mozilla/5.0 (compat'
    )
    assert r["user_agent"] == "Mozilla/5.0 (compat"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("17/May/2015:10:05:03 +0000", 1431857103000),
        ("17/May/2015:12:05:03 +0200", 1431857103000),
        ("17/May/2015:05:05:03 -0500", 1431857103000),
    ],
)
def test_time_offsets(text: str, ms: int) -> None:
    assert parse_clf_time(text) == ms


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("garbage", "line"),
        ('1.1.1.1 - - [17/Foo/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1', "time"),
        ('1.1.1.1 - - [31/Feb/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1', "time"),
    ],
)
def test_bad_lines_name_the_field(line: str, field: str) -> None:
    with pytest.raises(RecordInvalid) as e:
        parse_combined(line)
    assert e.value.field == field


@pytest.mark.parametrize(
    "stamp",
    [
        "01/Jan/0001:00:00:00 +0100",  # a `+` offset before year 1: out of datetime's range
        "31/Dec/9999:23:59:59 -0100",  # a `-` offset after 9999
        "01/Jan/0001:00:00:00 +2359",
        "31/Dec/9999:23:59:59 -2359",
    ],
)
def test_times_at_the_ends_of_the_calendar_parse_and_fail_only_their_record(stamp: str) -> None:
    from anonymizer.validate import TimeWindow, parse_time

    ms = parse_clf_time(stamp)  # an epoch number: no datetime arithmetic to overflow
    year_1, year_10000 = -62_135_596_800_000, 253_402_300_800_000
    assert year_1 - 86_400_000 < ms < year_10000 + 86_400_000
    with pytest.raises(RecordInvalid, match=r"older|future"):
        parse_time(ms, TimeWindow.around(1_795_000_000_000, 395))


@pytest.mark.parametrize("stamp", ["17/May/2015:10:05:03 +2400", "17/May/2015:10:05:03 -0060"])
def test_offsets_out_of_range(stamp: str) -> None:
    with pytest.raises(RecordInvalid, match="offset"):
        parse_clf_time(stamp)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        float("inf"),
        float("-inf"),
        float("nan"),
        10**30,
        -(10**30),
        1e300,
    ],
)
def test_any_time_out_of_range_is_a_record_error(value: object) -> None:
    from anonymizer.validate import TimeWindow, parse_time

    with pytest.raises(RecordInvalid) as e:
        parse_time(value, TimeWindow.around(1_795_000_000_000, 36_500))
    assert e.value.field == "time"


def test_the_window_never_leaves_the_datetime64_range() -> None:
    from anonymizer.validate import DATETIME64_MAX_MS, DATETIME64_MIN_MS, TimeWindow

    old = TimeWindow.around(-2_000_000_000_000, 36_500)  # a clock set to 1906, 100-year retention
    assert old.oldest_ms == DATETIME64_MIN_MS
    late = TimeWindow.around(DATETIME64_MAX_MS, 1)
    assert late.newest_ms == DATETIME64_MAX_MS
