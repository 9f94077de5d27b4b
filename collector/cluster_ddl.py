"""The `sql/` migrations as DDL for a ClickHouse cluster, generated from the same files so the two
can never drift.

Every table in `sql/` becomes two, both created `ON CLUSTER`:
- `<table>_local`: the table as written, its engine made Replicated (`MergeTree` ->
  `ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/<table>_local', '{replica}')`, any
  engine arguments kept after those two); this holds the rows, one copy per replica.
- `<table>`: a `Distributed` table over the local ones, keeping the `sql/` name, so the collector,
  reports and analysts use the same names on a cluster as on one server.

The sharding key is `cityHash64(tenant_id, time)` (`day` for a rollup, `hour` for outcomes; tables
without those use their first column). It must be deterministic in the row: a retried insert
carries the same `insert_deduplication_token`, and only when its rows split into the same per-
shard blocks does each shard recognise and drop the repeat (`rand()` would store a retry twice).
Hashing the time with the tenant spreads even one large tenant over every shard, and queries read
all shards in parallel; rollup states (`uniqCombined64`, quantiles) merge across shards at query
time.

Materialized views are created on every node and read the local table (`FROM <source>_local`),
writing into the local rollup table (`TO <target>_local`): each shard aggregates the rows it
stores. `ALTER TABLE` column changes go to both tables, other ALTERs to the local one; `DROP`s to
both. A statement this cannot translate is refused (a `MigrationError`), never passed through.
Statements come from `anonymizer.sql_text` (the migrator's splitter) and tables are read with
`anonymizer.ddl` (the privacy doc's reader). Pure text, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from anonymizer.ddl import parse
from anonymizer.sql_text import parenthesized, split, top_level, unquote
from collector.errors import MigrationError

LOCAL = "_local"
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/"

_CREATE = re.compile(
    r"^CREATE\s+TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w`\"]+)\s*(?P<rest>\(.*)$",
    re.S | re.I,
)
_ENGINE = re.compile(r"^\s*ENGINE\s*=\s*(?P<engine>\w*MergeTree)\b\s*(?P<tail>.*)$", re.S | re.I)
_VIEW = re.compile(
    r"^CREATE\s+MATERIALIZED\s+VIEW\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w`\"]+)\s+"
    r"TO\s+(?P<target>[\w`\"]+)\s+AS\s+(?P<select>.*)$",
    re.S | re.I,
)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(?P<name>[\w`\"]+)\s+(?P<rest>.*)$", re.S | re.I)
_MODIFY_QUERY = re.compile(r"^MODIFY\s+QUERY\s+(?P<select>.*)$", re.S | re.I)
_DROP = re.compile(
    r"^DROP\s+(?P<what>TABLE|VIEW)\s+(?P<ie>IF\s+EXISTS\s+)?(?P<name>[\w`\"]+)\s*$", re.I
)
_COLUMN_ACTION = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)


def sharding_key(columns: Iterable[str]) -> str:
    """Deterministic in the row (see the module docstring for why)."""
    names = list(columns)
    when = next((c for c in ("time", "day", "hour") if c in names), "")
    if "tenant_id" in names:
        return f"cityHash64(tenant_id, {when})" if when else "cityHash64(tenant_id)"
    if not names:
        raise MigrationError("cluster DDL: a table without columns has no sharding key")
    return f"cityHash64({names[0]})"


class ClusterDdl:
    """Translates statements in migration order; remembers which names are tables and views."""

    def __init__(self, cluster: str) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cluster):
            raise MigrationError("cluster DDL: the cluster name must be letters, digits and _")
        self.cluster = cluster
        self.tables: set[str] = set()
        self.views: set[str] = set()

    def translate(self, statement: str, where: str) -> list[str]:
        """The cluster statements for one `sql/` statement; `where` names it in errors."""
        statement = statement.strip()
        on = f"ON CLUSTER {self.cluster}"
        if m := _CREATE.match(statement):
            return self._create(m, statement, where)
        if m := _VIEW.match(statement):
            name, target = unquote(m["name"]), unquote(m["target"])
            if target not in self.tables:
                raise MigrationError(f"{where}: view {name} writes to {target}, not a table here")
            self.views.add(name)
            return [
                f"CREATE MATERIALIZED VIEW {m['ine'] or ''}{name} {on} TO {target}{LOCAL} AS\n"
                + self._local_select(m["select"], where)
            ]
        if m := _ALTER.match(statement):
            name, rest = unquote(m["name"]), m["rest"].strip()
            if name in self.views:
                q = _MODIFY_QUERY.match(rest)
                if not q:
                    raise MigrationError(f"{where}: cannot translate ALTER of view {name}")
                select = self._local_select(q["select"], where)
                return [f"ALTER TABLE {name} {on} MODIFY QUERY\n{select}"]
            if name not in self.tables:
                raise MigrationError(f"{where}: ALTER TABLE {name} before its CREATE TABLE")
            out = [f"ALTER TABLE {name}{LOCAL} {on} {rest}"]
            if all(_COLUMN_ACTION.match(a) for a in split(rest)):
                out.append(f"ALTER TABLE {name} {on} {rest}")
            return out
        if m := _DROP.match(statement):
            name, ie = unquote(m["name"]), m["ie"] or ""
            if name in self.views:
                self.views.discard(name)
                return [f"DROP VIEW {ie}{name} {on} SYNC"]
            self.tables.discard(name)
            return [f"DROP TABLE {ie}{name} {on} SYNC", f"DROP TABLE {ie}{name}{LOCAL} {on} SYNC"]
        raise MigrationError(f"{where}: no cluster translation for: {statement.split(None, 3)[:3]}")

    def _create(self, m: re.Match[str], statement: str, where: str) -> list[str]:
        name, ine = unquote(m["name"]), m["ine"] or ""
        inside = parenthesized(m["rest"])
        if inside is None or not inside[0]:
            raise MigrationError(f"{where}: CREATE TABLE {name} without a column list")
        body, after = inside
        e = _ENGINE.match(after)
        if not e:
            raise MigrationError(f"{where}: CREATE TABLE {name}: only *MergeTree engines translate")
        args, tail = parenthesized(e["tail"]) or ("", e["tail"])
        replicated_args = ", ".join(
            [f"'{REPLICA_PATH}{name}{LOCAL}'", "'{replica}'", *([args] if args.strip() else [])]
        )
        columns = [c.name for c in parse({where: statement})[0][name].columns]
        self.tables.add(name)
        on = f"ON CLUSTER {self.cluster}"
        return [
            f"CREATE TABLE {ine}{name}{LOCAL} {on}\n({body})\n"
            f"ENGINE = Replicated{e['engine']}({replicated_args})\n{tail.strip()}".rstrip(),
            f"CREATE TABLE {ine}{name} {on} AS {name}{LOCAL}\n"
            f"ENGINE = Distributed('{self.cluster}', currentDatabase(), {name}{LOCAL}, "
            f"{sharding_key(columns)})",
        ]

    def _local_select(self, select: str, where: str) -> str:
        """The view's SELECT reading the local table of its one source."""
        top = top_level(select)
        froms = [
            f for f in re.finditer(r"\bFROM\s+(?P<src>[\w`\"]+)", select, re.I) if top[f.start()]
        ]
        if len(froms) != 1 or unquote(froms[0]["src"]) not in self.tables:
            raise MigrationError(f"{where}: a view must read one table of sql/ to translate")
        f = froms[0]
        return select[: f.start("src")] + unquote(f["src"]) + LOCAL + select[f.end("src") :]
