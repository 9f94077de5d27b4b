"""`open_sink`: the one place an engine is chosen from `[storage] engine`."""

from pathlib import Path

import pytest

from collector import rollups
from collector.config import StorageConfig
from collector.errors import ConfigError
from collector.storage import ENGINES, check_engine, open_sink


def test_the_embedded_engine_opens_migrates_and_answers(tmp_path: Path) -> None:
    sink = open_sink(StorageConfig(path=tmp_path / "data", database="factory_test"))
    try:
        assert rollups.migrate(sink)  # a fresh engine: every migration applied
        assert sink.query("SELECT currentDatabase() AS db") == [{"db": "factory_test"}]
        assert sink.query("SELECT count() AS n FROM access_log") == [{"n": 0}]
    finally:
        sink.close()
    assert (tmp_path / "data" / "chdb").is_dir()


def test_an_unknown_engine_is_a_config_error_and_opens_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^storage\.engine: must be one of 'embedded', "):
        open_sink(StorageConfig(engine="postgres", path=tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_the_config_reader_accepts_exactly_the_factory_engines() -> None:
    for name in ENGINES:
        assert check_engine(name) == name
    with pytest.raises(ConfigError):
        check_engine("Embedded")
