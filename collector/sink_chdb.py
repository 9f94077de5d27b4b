"""The embedded engine: chDB (ClickHouse in-process) on a data folder.

chDB holds one data path per process, so exactly one `ChdbSink` is open at a time in a process.
Inserts go through a file: rows are written as JSONEachRow into the data folder and read with
`INSERT ... SELECT * FROM file(...)` (about 10x faster than inline data in the query text); the
columns are matched by name from the target table. The file holds anonymized rows only and is
deleted after the insert.

`probe` tells whether an insert can work now (the storage is failing until one does): it writes a
scratch file as large as the engine's smallest space reservation and inserts no rows.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import orjson
from chdb import session as chdb_session

from collector.errors import SinkError, SinkUnavailable
from collector.migrate import SQL_DIR, Migration, apply_migrations

PROBE_BYTES = 2 * 1024 * 1024  # chDB reserves 1 MiB for the smallest part it writes
_IDENT_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _ident(name: str) -> str:
    if not name or not set(name) <= _IDENT_OK:
        raise SinkError("invalid identifier")
    return name


def _string(value: str) -> str:
    """A ClickHouse string literal (the data folder's path may hold any character)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _text_params(params: dict[str, Any]) -> dict[str, Any]:
    """chDB takes query parameters in ClickHouse's text format: a list becomes `['a','b']`."""

    def literal(v: Any) -> str:
        return _string(v) if isinstance(v, str) else str(v)

    return {
        k: "[" + ",".join(literal(x) for x in v) + "]" if isinstance(v, list | tuple) else v
        for k, v in params.items()
    }


class ChdbSink:
    cluster = ""  # one process, never a cluster

    def __init__(self, path: Path, database: str, tmp_dir: Path, sql_dir: Path = SQL_DIR) -> None:
        self.path = path
        self.database = _ident(database)
        self.tmp_dir = tmp_dir
        self.sql_dir = sql_dir
        self._lock = threading.Lock()
        path.mkdir(parents=True, exist_ok=True)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._session: chdb_session.Session | None = chdb_session.Session(str(path))
        except RuntimeError as e:
            raise SinkUnavailable(
                f"cannot open the embedded engine at {path}: another process (a running "
                "collector?) holds it, or it is damaged"
            ) from e
        self._clear_scratch()
        self._run(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._run(f"USE {self.database}")

    def _clear_scratch(self) -> None:
        """Insert files left by a crash hold space (on a full disk, the space that is missing):
        only the process holding the engine writes them, and it has just opened it."""
        for leftover in self.tmp_dir.glob("*.ndjson"):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def _run(self, sql: str, fmt: str = "CSV", params: dict[str, Any] | None = None) -> bytes:
        with self._lock:
            if self._session is None:
                raise SinkUnavailable("the embedded engine is closed")
            try:
                if params:
                    res = self._session.query(sql, fmt, params=_text_params(params))
                else:
                    res = self._session.query(sql, fmt)
            except RuntimeError as e:
                raise SinkError(str(e).split("\n", 1)[0][:500]) from None
            return bytes(res.bytes())

    def execute(self, sql: str) -> None:
        self._run(sql)

    def migrate(self) -> list[str]:
        def applied() -> set[int]:
            return {int(r["version"]) for r in self.query("SELECT version FROM schema_migrations")}

        def record(m: Migration) -> None:
            self._run(
                "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                params={"v": m.version, "n": m.name},
            )

        return apply_migrations(self.execute, applied, record, self.sql_dir)

    def _scratch(self, name: str) -> Path:
        """A file in the scratch folder, made again if someone removed it."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / name

    def insert(self, table: str, rows: bytes, token: str) -> None:
        tmp = self._scratch(f"{_ident(token)}.ndjson")
        try:
            with open(tmp, "wb") as f:
                f.write(rows)
            self.insert_file(table, tmp, token)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def insert_file(self, table: str, path: Path, token: str) -> None:
        self._run(
            f"INSERT INTO {self.database}.{_ident(table)} "
            f"SELECT * FROM file({_string(str(path))}, 'JSONEachRow') "
            f"SETTINGS insert_deduplication_token = '{_ident(token)}', "
            # a retry dropped by the table is dropped by its rollups too (sql/0009)
            "deduplicate_blocks_in_dependent_materialized_views = 1, "
            # one thread: the engine runs below the ingest path, in the background
            "input_format_parallel_parsing = 0, max_threads = 1"
        )

    def probe(self, table: str) -> None:
        """Raises unless an insert into `table` can work now: the scratch folder takes a file of
        `PROBE_BYTES` and the engine takes an insert (of no rows) into the table."""
        tmp = self._scratch(f"probe-{_ident(table)}.ndjson")
        try:
            with open(tmp, "wb") as f:
                f.write(bytes(PROBE_BYTES))
                f.flush()
                os.fsync(f.fileno())
                f.truncate(0)
            self._run(
                f"INSERT INTO {self.database}.{_ident(table)} "
                f"SELECT * FROM file({_string(str(tmp))}, 'JSONEachRow')"
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out = self._run(sql, "JSONEachRow", params)
        return [orjson.loads(line) for line in out.splitlines() if line]

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
