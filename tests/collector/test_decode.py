import pytest

from collector.decode import (
    Failed,
    check_count,
    check_encoding,
    decode_combined,
    decode_json,
    decode_ndjson,
    decoder_for,
)
from collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


def test_json_array_and_single_object() -> None:
    assert decode_json(b'[{"ip":"1.1.1.1"},{"ip":"2.2.2.2"}]') == [
        {"ip": "1.1.1.1"},
        {"ip": "2.2.2.2"},
    ]
    assert decode_json(b'{"ip":"1.1.1.1"}') == [{"ip": "1.1.1.1"}]


@pytest.mark.parametrize("body", [b"", b"{", b"[1,", b"42", b'"x"', b"\xff\xfe"])
def test_undecodable_json_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_json(body)


def test_ndjson_bad_line_stays_per_record() -> None:
    items = decode_ndjson(b'{"ip":"1.1.1.1"}\r\nnot json\n\n{"ip":"2.2.2.2"}\n')
    assert items[0] == {"ip": "1.1.1.1"} and items[3] == {"ip": "2.2.2.2"}
    assert isinstance(items[1], Failed) and items[1].error.error.startswith(
        "line is not valid JSON"
    )
    assert isinstance(items[2], Failed) and items[2].error.error == "empty line"


def test_ndjson_non_utf8_is_400() -> None:
    with pytest.raises(BadRequest):
        decode_ndjson(b'{"ip":"\xff"}\n')


def test_combined_bad_line_stays_per_record() -> None:
    items = decode_combined(
        b'1.1.1.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1\nbad\n'
    )
    assert items[0]["ip"] == "1.1.1.1"
    assert isinstance(items[1], Failed) and items[1].error.field == "line"


def test_content_types() -> None:
    assert decoder_for("application/json", True) is decode_json
    assert decoder_for("application/x-ndjson", True) is decode_ndjson
    assert decoder_for("text/plain", True) is decode_combined
    for bad in ("text/plain", "application/xml", "application/octet-stream"):
        with pytest.raises(UnsupportedMediaType):
            decoder_for(bad, allow_text=False)


@pytest.mark.parametrize("enc", ["", "identity", "gzip", "GZIP", "zstd", "br", "deflate"])
def test_known_encodings(enc: str) -> None:
    check_encoding(enc)


@pytest.mark.parametrize("enc", ["compress", "x-foo", "gzip, br"])
def test_unknown_encodings(enc: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_encoding(enc)


def test_record_limit() -> None:
    check_count([{}] * 3, 3)
    with pytest.raises(PayloadTooLarge):
        check_count([{}] * 4, 3)
