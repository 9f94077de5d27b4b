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
