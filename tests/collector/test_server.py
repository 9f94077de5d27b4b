"""The pure parts of collector/server.py; the server itself is tried in
tests/redteam/test_connections.py."""

import pytest

from collector.server import FD_RESERVE_MIN, _bad_message_detail, connection_cap


def test_the_connection_cap_leaves_descriptors_for_files() -> None:
    assert connection_cap(300) == 300  # configured wins
    assert connection_cap(0, nofile=1024) == 1024 - FD_RESERVE_MIN
    assert connection_cap(0, nofile=20_000) == 15_000  # a quarter kept
    assert connection_cap(0, nofile=256) == 16  # never below a usable floor
    assert connection_cap(0) > 0


@pytest.mark.parametrize(
    ("reason", "detail"),
    [
        ("Duplicate 'Content-Length' header found.", "appears more than once"),
        ("Content-Length can't be present with Transfer-Encoding", "Content-Length and Transfer"),
        ("Invalid character in Content-Length: 'x@example.com'", "invalid Content-Length"),
        ("Invalid character in chunk size", "chunk"),
        ("Missing 'Host' header in request.", "Host"),
        ("anything else tck_secret", "malformed request"),
    ],
)
def test_parser_reasons_map_to_fixed_texts(reason: str, detail: str) -> None:
    text = _bad_message_detail(reason)
    assert detail in text
    assert "tck_secret" not in text and "@" not in text
