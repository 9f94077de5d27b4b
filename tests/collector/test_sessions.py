"""Dashboard sessions (collector/sessions.py) and the config keys the dashboard adds."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.config import parse_config
from collector.errors import ConfigError
from collector.sessions import SessionStore

KEY = "a" * 64


def test_a_session_resolves_until_deleted_and_stores_no_token(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s", ttl_s=60)
    token, session = store.create("0123456789ab")
    assert store.get(token) == session and session.expires > time.time() + 50
    files = list((tmp_path / "s").iterdir())
    assert len(files) == 1 and token not in files[0].name
    assert token.encode() not in files[0].read_bytes()
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    store.delete(token)
    assert store.get(token) is None and not list((tmp_path / "s").iterdir())


def test_an_expired_session_is_refused_and_swept(tmp_path: Path) -> None:
    store = SessionStore(tmp_path, ttl_s=60)
    token, _ = store.create("k1")
    other, _ = store.create("k2")
    for path in tmp_path.glob("*.session"):  # an hour later
        old = path.read_bytes().replace(b'"expires":', b'"expires":-3600+')
        path.write_bytes(old.split(b"-3600+")[0] + b"1}")
    assert store.get(token) is None
    assert store.sweep() == 1 and store.get(other) is None and not list(tmp_path.iterdir())


@given(st.text(max_size=80))
def test_no_guessed_token_resolves_or_raises(token: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore(Path(tmp), ttl_s=60)
        real, _ = store.create("k")
        if token != real:
            assert store.get(token) is None
        store.delete(token)  # never raises, never removes another session
        assert token == real or store.get(real) is not None
        assert os.listdir(tmp) or token == real


def test_key_names_and_the_dashboard_section() -> None:
    text = f"""
[dashboard]
session_ttl_s = 600
[[tenants]]
id = "acme"
[[tenants.keys]]
sha256 = "{KEY}"
scopes = ["analyst"]
name = "Ana (analytics)"
"""
    config = parse_config(text, Path("."))
    assert config.dashboard.session_ttl_s == 600
    assert config.tenants[0].keys[0].name == "Ana (analytics)"
    with pytest.raises(ConfigError, match="name"):
        parse_config(text.replace("Ana (analytics)", "<script>"), Path("."))
    with pytest.raises(ConfigError, match="session_ttl_s"):
        parse_config(text.replace("600", "5"), Path("."))
