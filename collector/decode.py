"""Body -> raw records, with the work and memory of one request bounded before it is spent.

Per-record failures stay per record (an NDJSON line or a log line that does not parse is reported
by its index); only a body that cannot be read at all is a 400, and a body with more records than
`max_records` is a 413 *before* any record is parsed:

- line formats (NDJSON, combined text): the lines are counted (they were already counted as the
  body streamed in, see collector/body.py), then parsed lazily, one by one, as the pipeline takes
  them, so the work can be sliced and nothing is held per line but the line itself;
- JSON (and each NDJSON line): a parsed value costs up to ~110 bytes of Python objects however
  few bytes it took on the wire (`[0,0,...]`, `[{},{},...]`), so the structural characters
  (`, : [ {`, an upper bound on the number of values) are counted first, at C speed, and a body
  with more than `JSON_VALUES_PER_RECORD * max_records` of them is refused unparsed. Nesting is
  bounded by orjson (depth 1024: a 400).

Decompression is aiohttp's (gzip, deflate, zstd, br); its bounds are applied while the body is
read (collector/body.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from anonymizer.errors import RecordInvalid
from collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from collector.line_formats import LineReader, TextOptions

JSON = "application/json"
NDJSON = "application/x-ndjson"
JSONL = "application/jsonl"
JSON_SEQ = "application/json-seq"  # RFC 7464: each record is RS (0x1E) JSON-text LF
TEXT = "text/plain"
RS = b"\x1e"
ENCODINGS = frozenset({"", "identity", "gzip", "deflate", "zstd", "br"})
# Structural characters allowed per record: an event with 64 properties needs ~150.
JSON_VALUES_PER_RECORD = 160
# Apache's request line and each header are at most 8 KiB: a longer line is not a log line.
MAX_LINE_CHARS = 64 * 1024


class Failed:
    """Stands in a record list for an item that failed before validation."""

    __slots__ = ("error",)

    def __init__(self, error: RecordInvalid) -> None:
        self.error = error


Item = Any  # a raw record (normally a dict) or a `Failed`


@dataclass(frozen=True, slots=True)
class Decoded:
    """`count` records, known before any is parsed; `items` yields them (once), lazily for the
    line formats."""

    count: int
    items: Iterable[Item]


@dataclass(frozen=True, slots=True)
class Format:
    decode: Callable[[bytes, int], Decoded]  # (body, max_records)
    line_based: bool  # records are lines: the body reader counts them as they stream in
    json: bool  # JSON values: the body reader counts them as they stream in


def check_encoding(content_encoding: str) -> None:
    if content_encoding.strip().lower() not in ENCODINGS:
        raise UnsupportedMediaType("Content-Encoding must be gzip, zstd, br, deflate or identity")


def format_for(content_type: str, allow_text: bool, text: TextOptions | None = None) -> Format:
    if content_type == JSON:
        return Format(decode_json, line_based=False, json=True)
    if content_type in (NDJSON, JSONL):
        return Format(decode_ndjson, line_based=True, json=True)
    if content_type == JSON_SEQ:
        # a record may span lines (RS separates them), so lines are not counted as records
        return Format(decode_json_seq, line_based=False, json=True)
    if content_type == TEXT and allow_text:
        options = text or TextOptions()
        return Format(
            lambda body, max_records: decode_text(body, max_records, options),
            line_based=True,
            json=False,
        )
    raise UnsupportedMediaType(f"Content-Type must be one of {accepted_types(allow_text)}")


def accepted_types(allow_text: bool) -> str:
    """Every media type an ingest endpoint takes, for its 415 answer."""
    types = [JSON, NDJSON, JSONL, JSON_SEQ] + ([TEXT] if allow_text else [])
    return ", ".join(types)


def check_count(count: int, limit: int) -> None:
    if count > limit:
        raise PayloadTooLarge(f"{count} records in one request; the limit is {limit}")


def check_json_values(body: bytes, max_records: int) -> None:
    """413 when the body may hold more JSON values than `max_records` records need. Counting is
    skipped when the body is too short to exceed the budget (the normal case)."""
    budget = JSON_VALUES_PER_RECORD * max_records
    if len(body) <= budget:
        return
    if json_values(body) > budget:
        raise PayloadTooLarge(
            f"more than {budget} JSON values in one request "
            f"({JSON_VALUES_PER_RECORD} per record, {max_records} records)"
        )


def json_values(body: bytes) -> int:
    """An upper bound on the JSON values in `body` (each but the first follows one of `,:[{`)."""
    return body.count(b",") + body.count(b":") + body.count(b"[") + body.count(b"{")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"body is not UTF-8 (byte {e.start})") from None


def decode_json(body: bytes, max_records: int) -> Decoded:
    check_json_values(body, max_records)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"body is not valid JSON: {e.msg} at position {e.pos}") from None
    if isinstance(doc, list):
        check_count(len(doc), max_records)
        return Decoded(len(doc), doc)
    if isinstance(doc, dict):
        return Decoded(1, (doc,))
    raise BadRequest("JSON body must be an array of records or one record object")


def _lines(body: bytes, max_records: int) -> list[str]:
    """The lines, counted before they are split: n newlines make at least n lines."""
    check_count(body.count(b"\n"), max_records)
    lines = _text(body).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    check_count(len(lines), max_records)
    return lines


def _ndjson_item(line: str) -> Item:
    if line.endswith("\r"):
        line = line[:-1]
    if not line.strip():
        return Failed(RecordInvalid("", "empty line"))
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return Failed(RecordInvalid("", f"line is not valid JSON: {e.msg}"))


def decode_ndjson(body: bytes, max_records: int) -> Decoded:
    check_json_values(body, max_records)
    lines = _lines(body, max_records)
    return Decoded(len(lines), map(_ndjson_item, lines))


def decode_json_seq(body: bytes, max_records: int) -> Decoded:
    """RFC 7464 JSON text sequences: RS starts each record, which may span lines; a body
    without any RS is read as NDJSON (a sender that names the type but frames by lines)."""
    if RS not in body:
        return decode_ndjson(body, max_records)
    check_json_values(body, max_records)
    check_count(body.count(RS), max_records)
    parts = _text(body).split("\x1e")
    if parts[0].strip():
        raise BadRequest("application/json-seq body must start with the record separator (RS)")
    records = parts[1:]
    return Decoded(len(records), map(_seq_item, records))


def _seq_item(text: str) -> Item:
    if not text.strip():
        return Failed(RecordInvalid("", "empty record"))
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return Failed(RecordInvalid("", f"record is not valid JSON: {e.msg}"))


def _text_items(lines: list[str], reader: LineReader) -> Iterator[Item]:
    record = reader.record
    for line in lines:
        if len(line) > MAX_LINE_CHARS:
            yield Failed(RecordInvalid("line", f"longer than {MAX_LINE_CHARS} characters"))
            continue
        if line.endswith("\r"):
            line = line[:-1]
        try:
            yield record(line)
        except RecordInvalid as e:
            yield Failed(e)


def decode_text(body: bytes, max_records: int, options: TextOptions | None = None) -> Decoded:
    """Access-log lines, each in its detected (or the declared) format."""
    lines = _lines(body, max_records)
    return Decoded(len(lines), _text_items(lines, LineReader(options or TextOptions())))


def decode_combined(body: bytes, max_records: int) -> Decoded:
    """`decode_text` with the default options (kept for callers of the old name)."""
    return decode_text(body, max_records)
