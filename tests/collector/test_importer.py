"""`collector import`'s pieces: reading plain, .gz and .zst files by line with offsets, chunking
(blank lines not sent, W3C `#Fields:` carried into every chunk), the content type per file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.importer import (
    NDJSON,
    TEXT,
    Chunk,
    Refused,
    Source,
    chunks,
    content_type,
    default_checkpoint,
)

LINES = [b"a 1\n", b"\n", b"b 2\r\n", b"c 3\n", b"   \n", b"d 4"]
TEXT_BODY = b"".join(LINES)


def write_all(tmp_path: Path, body: bytes) -> list[Path]:
    plain, gz, zst = tmp_path / "x.log", tmp_path / "x.log.gz", tmp_path / "x.log.zst"
    plain.write_bytes(body)
    gz.write_bytes(gzip.compress(body))
    zst.write_bytes(zstandard.ZstdCompressor().compress(body))
    return [plain, gz, zst]


def read(path: Path, offset: int = 0, line: int = 0, max_lines: int = 2) -> list[Chunk]:
    source = Source(str(path))
    try:
        source.skip(offset)
        return list(chunks(source, offset, line, max_lines))
    finally:
        source.close()


def test_chunks_skip_blank_lines_and_keep_line_numbers(tmp_path: Path) -> None:
    for path in write_all(tmp_path, TEXT_BODY):
        got = read(path)
        assert [c.body for c in got] == [b"a 1\nb 2\n", b"c 3\nd 4\n"]
        assert [c.line_numbers for c in got] == [[1, 3], [4, 6]]
        assert [(c.end_offset, c.end_line) for c in got] == [(10, 3), (len(TEXT_BODY), 6)]


def test_a_checkpoint_resumes_at_its_offset_in_every_encoding(tmp_path: Path) -> None:
    for path in write_all(tmp_path, TEXT_BODY):
        (first, second) = read(path)
        again = read(path, first.end_offset, first.end_line)
        assert again == [second]


def test_a_file_shorter_than_its_checkpoint_is_refused(tmp_path: Path) -> None:
    for path in write_all(tmp_path, TEXT_BODY)[1:]:
        with pytest.raises(Refused, match="shorter than its checkpoint"):
            read(path, 10_000)


def test_the_w3c_fields_directive_heads_every_chunk(tmp_path: Path) -> None:
    body = b"#Version: 1.0\n#Fields: date time c-ip\n2026-01-01 00:00:00 1.2.3.4\n"
    body += b"2026-01-01 00:00:01 1.2.3.5\n2026-01-01 00:00:02 1.2.3.6\n"
    got = read(write_all(tmp_path, body)[0], max_lines=2)
    assert got[0].body == b"#Version: 1.0\n#Fields: date time c-ip\n"
    for later in got[1:]:  # the directive (line "0": sent again, not a line of this chunk)
        assert later.body.startswith(b"#Fields: date time c-ip\n") and later.line_numbers[0] == 0
    assert [c.line_numbers[1] for c in got[1:]] == [3, 4, 5]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="ab \r", max_size=6), max_size=30), st.integers(1, 7))
def test_every_non_blank_line_is_sent_once_in_order(lines: list[str], max_lines: int) -> None:
    import tempfile

    body = "\n".join(lines).encode()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.log"
        path.write_bytes(body)
        got = read(path, max_lines=max_lines)
    sent = [ln for c in got for ln in c.body.decode().split("\n")[:-1]]
    assert sent == [ln.rstrip("\r") for ln in body.decode().split("\n") if ln.strip()]
    assert all(len(c.line_numbers) <= max_lines for c in got)


def test_content_type_per_kind_and_format() -> None:
    assert content_type("logs", "auto", b'{"ip": "x"}') == (NDJSON, {})
    assert content_type("logs", "auto", b"1.2.3.4 - - [...]") == (TEXT, {})
    assert content_type("events", "auto", b"anything") == (NDJSON, {})
    assert content_type("logs", "alb", b"") == (TEXT, {"X-Log-Format": "alb"})
    with pytest.raises(Refused):
        content_type("devices", "text", b"")


def test_the_default_checkpoint_names_the_run_and_none_for_stdin() -> None:
    a = default_checkpoint("acme", "logs", ["a.log"])
    assert a is not None and a == default_checkpoint("acme", "logs", ["a.log"])
    assert a != default_checkpoint("globex", "logs", ["a.log"])
    assert default_checkpoint("acme", "logs", ["-"]) is None
