"""Body -> a list of raw records. Per-record failures stay per record (an NDJSON line or a log line
that does not parse is reported by its index); only a body that cannot be read at all is a 400.

Decompression is aiohttp's (gzip, deflate, zstd, br), bounded by `client_max_size` on the
decompressed size, so a bomb is refused at the limit without being inflated whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from anonymizer.errors import RecordInvalid
from collector.combined import parse_combined
from collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

JSON = "application/json"
NDJSON = "application/x-ndjson"
TEXT = "text/plain"
ENCODINGS = frozenset({"", "identity", "gzip", "deflate", "zstd", "br"})


class Failed:
    """Stands in a record list for an item that failed before validation."""

    __slots__ = ("error",)

    def __init__(self, error: RecordInvalid) -> None:
        self.error = error


Item = Any  # a raw record (normally a dict) or a `Failed`


def check_encoding(content_encoding: str) -> None:
    if content_encoding.strip().lower() not in ENCODINGS:
        raise UnsupportedMediaType("Content-Encoding must be gzip, zstd, br, deflate or identity")


def decoder_for(content_type: str, allow_text: bool) -> Callable[[bytes], list[Item]]:
    if content_type == JSON:
        return decode_json
    if content_type in (NDJSON, "application/jsonl", "application/json-seq"):
        return decode_ndjson
    if content_type == TEXT and allow_text:
        return decode_combined
    kinds = "application/json, application/x-ndjson" + (", text/plain" if allow_text else "")
    raise UnsupportedMediaType(f"Content-Type must be one of {kinds}")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"body is not UTF-8 (byte {e.start})") from None


def decode_json(body: bytes) -> list[Item]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"body is not valid JSON: {e.msg} at position {e.pos}") from None
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        return [doc]
    raise BadRequest("JSON body must be an array of records or one record object")


def _lines(body: bytes) -> list[str]:
    lines = _text(body).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def decode_ndjson(body: bytes) -> list[Item]:
    out: list[Item] = []
    for line in _lines(body):
        if not line.strip():
            out.append(Failed(RecordInvalid("", "empty line")))
            continue
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError as e:
            out.append(Failed(RecordInvalid("", f"line is not valid JSON: {e.msg}")))
    return out


def decode_combined(body: bytes) -> list[Item]:
    out: list[Item] = []
    for line in _lines(body):
        try:
            out.append(parse_combined(line))
        except RecordInvalid as e:
            out.append(Failed(e))
    return out


def check_count(items: list[Item], limit: int) -> None:
    if len(items) > limit:
        raise PayloadTooLarge(f"{len(items)} records in one request; the limit is {limit}")
