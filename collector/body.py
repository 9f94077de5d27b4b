"""Reading an ingest body with every bound applied *while* it arrives, not after.

`request.read()` would hold the whole body before anything is checked, count the wire limit only
on Content-Length (a chunked body had none) and wait as long as the sender likes. Here the body is
read chunk by chunk from aiohttp's stream:

- wire bytes (before decompression) are counted with `StreamReader.total_raw_bytes`, aiohttp's
  public count of the bytes its parser received, so a chunked or lying body stops at
  `max_body_bytes` (413);
- decompressed bytes stop at `max_decompressed_bytes` (413); aiohttp inflates at most about one
  read-chunk ahead of us, so a gzip bomb is never inflated whole;
- for line formats (NDJSON, combined text) newlines are counted as the chunks come: a body with
  more lines than `max_records` is refused (413) after its first chunk, long before it is held
  whole (a 16 KB gzip of 16 MiB of newlines stops after ~1 MiB);
- for JSON formats the structural characters (`, : [ {`, see `collector.decode`) are counted the
  same way, so `[0,0,0,...]` stops at its value budget, not at 64 MiB;
- the whole read has a deadline, `body_read_timeout_s` (408), so a slow sender frees its
  in-flight slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from collector.decode import JSON_VALUES_PER_RECORD, check_encoding, json_values
from collector.errors import BadRequest, PayloadTooLarge, RequestTimeout

READ_CHUNK = 1024 * 1024  # decompressed bytes aiohttp may buffer ahead of us


@dataclass(frozen=True, slots=True)
class BodyLimits:
    wire_bytes: int
    decompressed_bytes: int
    timeout_s: float
    max_lines: int | None = None  # line formats: more lines than this is a 413
    max_json_values: int | None = None  # JSON formats: more structural characters is a 413


async def read_body(request: web.Request, limits: BodyLimits) -> bytes:
    """The decompressed body, refused as soon as it crosses a limit. Its chunks are joined at the
    end: for a moment the body is held twice (as `request.read()` did)."""
    check_encoding(request.headers.get("Content-Encoding", ""))
    length = request.content_length
    if length is not None and length > limits.wire_bytes:
        raise PayloadTooLarge(f"body of {length} bytes; the limit is {limits.wire_bytes}")
    try:
        async with asyncio.timeout(limits.timeout_s):
            return await _read(request, limits)
    except TimeoutError:
        raise RequestTimeout(
            f"body not received within {limits.timeout_s:g} s (server.body_read_timeout_s)"
        ) from None
    except RequestPayloadError:  # a corrupt gzip/zstd/br stream, or broken chunked framing
        raise BadRequest(
            "body cannot be read: corrupt Content-Encoding data or malformed framing"
        ) from None


def _newlines(data: bytes) -> int:
    return data.count(b"\n")


def _tally(so_far: int, before: list[bytes], chunk: bytes, count: Callable[[bytes], int]) -> int:
    """`so_far` plus `chunk`'s count; the first time (`so_far` < 0), the chunks `before` too."""
    if so_far < 0:
        so_far = sum(count(c) for c in before)
    return so_far + count(chunk)


async def _read(request: web.Request, limits: BodyLimits) -> bytes:
    stream = request.content
    stream.set_read_chunk_size(READ_CHUNK)
    chunks: list[bytes] = []
    size = 0
    newlines = values = -1  # not counted yet
    while chunk := await stream.readany():
        if stream.total_raw_bytes > limits.wire_bytes:
            raise PayloadTooLarge(f"body over the limit of {limits.wire_bytes} bytes")
        size += len(chunk)
        if size > limits.decompressed_bytes:
            raise PayloadTooLarge(
                f"decompressed body over the limit of {limits.decompressed_bytes} bytes"
            )
        # A newline or a structural character is one byte: until the body is longer than a
        # limit, its count cannot be over it, so nothing is counted for the usual body. Past
        # that, the chunks before are counted once (`_tally`), then each new one.
        if limits.max_lines is not None and size > limits.max_lines:
            newlines = _tally(newlines, chunks, chunk, _newlines)
            if newlines > limits.max_lines:  # n newlines end at least n lines
                raise PayloadTooLarge(
                    f"more than {limits.max_lines} records in one request; "
                    f"the limit is {limits.max_lines}"
                )
        if limits.max_json_values is not None and size > limits.max_json_values:
            values = _tally(values, chunks, chunk, json_values)
            if values > limits.max_json_values:
                raise PayloadTooLarge(
                    f"more than {limits.max_json_values} JSON values in one request "
                    f"({JSON_VALUES_PER_RECORD} per record)"
                )
        chunks.append(chunk)
        # `readany()` returns without suspending while aiohttp has data, and its buffer is
        # refilled (decompressed) synchronously as we take it: without this yield a 64 MiB
        # inflated body is read, counted and inflated in one step of the loop (~0.6 s).
        await asyncio.sleep(0)
    return b"".join(chunks)
