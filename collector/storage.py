"""The one place a storage engine is chosen: `[storage] engine` names it, `open_sink` opens it.

The service (`app._storage`) and every command that reads or writes the stored rows (`collector
migrate | sql | scan-pii`) open their sink here, so adding an engine (a ClickHouse server through
clickhouse-connect: `collector.sink_clickhouse`) is one module implementing `collector.sink.Sink`
plus one entry in `ENGINES`; the config reader accepts exactly the names listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from collector.errors import ConfigError
from collector.sink import Sink

if TYPE_CHECKING:  # the config reader imports this module for ENGINES
    from collector.config import StorageConfig


def _embedded(storage: StorageConfig) -> Sink:
    """chDB in this process, on `<path>/chdb` (imported here: other engines do not load it)."""
    from collector.sink_chdb import ChdbSink

    return ChdbSink(storage.chdb_path, storage.database, storage.tmp_path)


def _clickhouse(storage: StorageConfig) -> Sink:
    """A ClickHouse server over HTTP(S); connects at its first call, so opening never fails on
    an unreachable server."""
    from collector.sink_clickhouse import ClickHouseSink

    return ClickHouseSink(storage)


# `[storage] engine` -> how to open it; blocking, run it off the event loop
ENGINES: dict[str, Callable[[StorageConfig], Sink]] = {
    "embedded": _embedded,
    "clickhouse": _clickhouse,
}


def check_engine(name: str) -> str:
    """`name` if it is an engine listed in `ENGINES` (the config reader checks it at load)."""
    if name not in ENGINES:
        raise ConfigError(f"storage.engine: must be one of {', '.join(map(repr, ENGINES))}")
    return name


def open_sink(storage: StorageConfig) -> Sink:
    """The configured engine, opened (not yet migrated); the caller closes it."""
    return ENGINES[check_engine(storage.engine)](storage)
