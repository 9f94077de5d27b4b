"""Numbered schema migrations from `sql/`, recorded in `schema_migrations`.

The same files run on chDB and on a ClickHouse server. Each file may hold several statements
separated by `;`; they are split by `anonymizer.sql_text` (quotes and comments honoured), the
splitter the privacy doc reads the schema with, so both see the same statements.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from anonymizer.sql_text import split_statements
from collector.errors import MigrationError, SinkError

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY version
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    out = []
    for p in sorted(sql_dir.glob("*.sql")):
        m = _NAME.match(p.name)
        if m:
            out.append(Migration(int(m.group(1)), p.name, tuple(split_statements(p.read_text()))))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {sql_dir}")
    return out


def apply_migrations(
    execute: Callable[[str], None],
    applied_versions: Callable[[], set[int]],
    record: Callable[[Migration], None],
    sql_dir: Path = SQL_DIR,
) -> list[str]:
    """Apply what is not yet recorded, in order; returns the names applied."""
    execute(CREATE_MIGRATIONS_TABLE)
    done = applied_versions()
    applied = []
    for m in discover(sql_dir):
        if m.version in done:
            continue
        for stmt in m.statements:
            try:
                execute(stmt)
            except SinkError as e:
                raise MigrationError(f"{m.name}: {e}") from e
        record(m)
        applied.append(m.name)
    return applied
