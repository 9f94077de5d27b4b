import gzip

import pytest

from collector.decode import (
    JSON_VALUES_PER_RECORD,
    MAX_LINE_CHARS,
    Decoded,
    Failed,
    check_count,
    check_encoding,
    check_json_values,
    decode_combined,
    decode_json,
    decode_ndjson,
    format_for,
)
from collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

LIMIT = 10_000


def items(decoded: Decoded) -> list[object]:
    out = list(decoded.items)
    assert len(out) == decoded.count
    return out


def test_json_array_and_single_object() -> None:
    assert items(decode_json(b'[{"ip":"1.1.1.1"},{"ip":"2.2.2.2"}]', LIMIT)) == [
        {"ip": "1.1.1.1"},
        {"ip": "2.2.2.2"},
    ]
    assert items(decode_json(b'{"ip":"1.1.1.1"}', LIMIT)) == [{"ip": "1.1.1.1"}]


@pytest.mark.parametrize("body", [b"", b"{", b"[1,", b"42", b'"x"', b"\xff\xfe"])
def test_undecodable_json_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_json(body, LIMIT)


def test_ndjson_bad_line_stays_per_record() -> None:
    got = items(decode_ndjson(b'{"ip":"1.1.1.1"}\r\nnot json\n\n{"ip":"2.2.2.2"}\n', LIMIT))
    assert got[0] == {"ip": "1.1.1.1"} and got[3] == {"ip": "2.2.2.2"}
    assert isinstance(got[1], Failed) and got[1].error.error.startswith("line is not valid JSON")
    assert isinstance(got[2], Failed) and got[2].error.error == "empty line"


def test_ndjson_non_utf8_is_400() -> None:
    with pytest.raises(BadRequest):
        decode_ndjson(b'{"ip":"\xff"}\n', LIMIT)


def test_combined_bad_line_stays_per_record() -> None:
    got = items(
        decode_combined(
            b'1.1.1.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1\r\nbad\n', LIMIT
        )
    )
    assert got[0]["ip"] == "1.1.1.1"  # type: ignore[index]
    assert isinstance(got[1], Failed) and got[1].error.field == "line"


def test_combined_overlong_line_is_refused_without_the_regex() -> None:
    (got,) = items(decode_combined(b"1" * (MAX_LINE_CHARS + 1), LIMIT))
    assert isinstance(got, Failed) and "longer than" in got.error.error


def test_content_types() -> None:
    assert format_for("application/json", True).decode is decode_json
    assert not format_for("application/json", True).line_based
    assert format_for("application/x-ndjson", True).decode is decode_ndjson
    text = format_for("text/plain", True).decode(b"#Version: 1.0\n", LIMIT)
    assert text.count == 1
    assert format_for("text/plain", True).line_based
    for bad in ("text/plain", "application/xml", "application/octet-stream"):
        with pytest.raises(UnsupportedMediaType):
            format_for(bad, allow_text=False)


@pytest.mark.parametrize("enc", ["", "identity", "gzip", "GZIP", "zstd", "br", "deflate"])
def test_known_encodings(enc: str) -> None:
    check_encoding(enc)


@pytest.mark.parametrize("enc", ["compress", "x-foo", "gzip, br"])
def test_unknown_encodings(enc: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_encoding(enc)


def test_record_limit() -> None:
    check_count(3, 3)
    with pytest.raises(PayloadTooLarge):
        check_count(4, 3)


@pytest.mark.parametrize("decode", [decode_ndjson, decode_combined])
def test_lines_over_the_limit_are_refused_before_they_are_split(decode: object) -> None:
    """16 MiB of newlines: 413 from counting, not 16M `Failed` objects."""
    body = gzip.decompress(gzip.compress(b"\n" * (16 * 1024 * 1024)))
    with pytest.raises(PayloadTooLarge, match="16777216 records"):
        decode(body, LIMIT)  # type: ignore[operator]
    assert items(decode(b"\n" * 3, 3))  # type: ignore[operator]  # three empty lines: 3 records


@pytest.mark.parametrize(
    "bomb",
    [
        b"[" + b"0," * 2_000_000 + b"0]",
        b"[" + b"{}," * 2_000_000 + b"{}]",
        b'[{"properties":{' + b",".join(b'"k%d":0' % i for i in range(1_000_000)) + b"}}]",
    ],
)
def test_json_bombs_are_refused_unparsed(bomb: bytes) -> None:
    with pytest.raises(PayloadTooLarge, match="JSON values"):
        decode_json(bomb, LIMIT)
    with pytest.raises(PayloadTooLarge, match="JSON values"):
        decode_ndjson(bomb, LIMIT)


def test_json_value_budget_counts_only_long_bodies() -> None:
    check_json_values(b"[" + b"0," * 100 + b"0]", 1)  # shorter than the budget: not counted
    with pytest.raises(PayloadTooLarge):
        check_json_values(b"[" + b"0," * JSON_VALUES_PER_RECORD + b"0]", 1)


def test_deep_nesting_is_a_400() -> None:
    with pytest.raises(BadRequest, match="depth"):
        decode_json(b"[" * 100_000, LIMIT)


def test_json_array_over_the_record_limit() -> None:
    with pytest.raises(PayloadTooLarge, match="4 records"):
        decode_json(b"[{},{},{},{}]", 3)
