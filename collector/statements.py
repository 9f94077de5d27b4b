"""The statements that change stored rows (subject deletion, rollup rebuild and backfill), rendered
for where they run: one server or the embedded engine, or a cluster (`[storage] cluster`).

On a cluster every `sql/` table T is a `Distributed` table over `T_local` (collector.cluster_ddl).
A Distributed table takes SELECTs and INSERTs, but no mutation: a lightweight `DELETE` on it is
refused. So:
- a DELETE goes to `T_local ON CLUSTER c` (supported for lightweight deletes since ClickHouse
  23.2): every shard deletes its rows, and the statement returns once every host ran it, each
  waiting for all its replicas (`lightweight_deletes_sync = 2`, set in the statement so it is the
  same on every host whatever a profile says);
- a rollup is rebuilt from ALL shards' rows: a materialized view reads `T_local` (each shard
  aggregates what it stores, so one (tenant, day) has partial states on every shard's local
  rollup), so the view's SELECT is read back and made to read the Distributed source, the day's
  rows are deleted on every shard's local rollup, and the recomputed states are inserted into the
  Distributed rollup, where its sharding key puts each on one shard. Readers merge states across
  shards (`-Merge` over the Distributed rollup), so partial and whole states give the same totals;
- such an INSERT waits until the shards have the rows (`distributed_foreground_insert = 1`), so
  a deletion's rebuild is done, or failed, when the call returns.
With `cluster = ""` every statement is byte-for-byte what it was before clusters existed.
Pure text, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collector.cluster_ddl import LOCAL
from collector.errors import SinkError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# the rollup tables keep a deduplication window (sql/0009, 0011) for retried source inserts; a
# rebuild may produce the very block an earlier one did, and must never be dropped for that
NO_DEDUP = "insert_deduplicate = 0"
# every host waits for all its replicas to apply the delete (a profile may lower the default)
CLUSTER_DELETE_SETTINGS = "lightweight_deletes_sync = 2"
# an INSERT into a Distributed table returns once the shards stored the rows, not when queued
CLUSTER_INSERT_SETTINGS = "distributed_foreground_insert = 1"


def _name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise SinkError("invalid identifier")
    return name


@dataclass(frozen=True, slots=True)
class Statements:
    """`cluster`: the `[storage] cluster` name, "" for one server or the embedded engine."""

    cluster: str = ""

    def __post_init__(self) -> None:
        if self.cluster:
            _name(self.cluster)

    def mutation_target(self, table: str) -> str:
        """Where a DELETE on `table` goes: the table itself, or its local tables on every shard."""
        if not self.cluster:
            return f"`{_name(table)}`"
        return f"`{_name(table)}{LOCAL}` ON CLUSTER `{self.cluster}`"

    def delete(self, table: str, where: str) -> str:
        """A lightweight DELETE of the rows `where` holds, on every shard when on a cluster."""
        sql = f"DELETE FROM {self.mutation_target(table)} WHERE {where}"
        return f"{sql} SETTINGS {CLUSTER_DELETE_SETTINGS}" if self.cluster else sql

    def view_select(self, as_select: str, source: str) -> str:
        """A materialized view's SELECT (as the server stores it), reading every shard: on a
        cluster the view reads `<source>_local` (this node's rows only); the Distributed
        `<source>` holds them all."""
        if not self.cluster:
            return as_select
        local = re.compile(
            rf"(?<![\w`]) ((?:`?\w+`?\.)?) `?{re.escape(_name(source) + LOCAL)}`? (?![\w`])", re.X
        )
        found = local.findall(as_select)
        if len(found) != 1:
            raise SinkError(f"the rollup view's SELECT does not read {source}{LOCAL} once")
        return local.sub(lambda m: f"{m[1]}`{source}`", as_select)

    def rebuild_insert(self, table: str, select: str, where: str = "") -> str:
        """INSERT the rows of a rollup's SELECT (limited by `where`) into `table`, the
        Distributed rollup on a cluster (each row to the shard its sharding key names)."""
        settings = NO_DEDUP + (f", {CLUSTER_INSERT_SETTINGS}" if self.cluster else "")
        filtered = f" WHERE {where}" if where else ""
        return (
            f"INSERT INTO `{_name(table)}` SELECT * FROM ({select}){filtered} SETTINGS {settings}"
        )

    def shown_tables(self) -> str:
        """A condition on `system.tables.name` leaving out a cluster's local tables: the
        Distributed table of the same `sql/` name reads every shard's (a scan of both would
        report this node's rows twice)."""
        return f" AND NOT endsWith(name, '{LOCAL}')" if self.cluster else ""
