"""`collector grants`: the ClickHouse roles, profiles, quota, users and row policies for people,
as SQL generated from the schema (`sql/`, read by `anonymizer.ddl`) and the rollup registry
(`anonymizer.rules.ROLLUPS`), so a table added to `sql/` is covered without editing this file.

- `collector_writer`: what the service and `collector migrate` need on the database: create and
  alter its tables and views, insert (with dedup tokens: settings stay writable), read (reports,
  subject export) and lightweight DELETE (subject deletion, rollup rebuilds).
- `analyst`: SELECT on the rollup tables only (never a record table, never `policy_audit`), under
  the `collector_readonly` profile (`readonly = 2`, CONST: reads only, and clients such as
  Grafana or clickhouse-connect may still send query settings; time, memory and result bounds
  that cannot be lifted) and the `collector_analyst` quota (per user, per hour).
- `privacy_auditor`: SELECT on `policy_audit` and on every table `collector scan-pii` reads (all
  tables of the schema), under the same read-only profile.
- `--tenant T --user U`: user U with only the `analyst` role, bound to tenant T by a RESTRICTIVE
  row policy on every table the role can read. Each such table also carries one permissive
  `collector_all_rows` policy (`USING 1 TO ALL`): without it, the first policy on a table would
  hide every row from every other user (ClickHouse: a table with policies shows a user only the
  rows some permissive policy allows). Visible = (any permissive) AND (every restrictive), so U
  sees T's rows whatever other role it is given later. The user is created with no role, bound,
  and only then given `analyst`: a failure halfway leaves a user who can read nothing.

Keys and salts are files on the collectors' hosts (see docs/security.md), never in ClickHouse:
no grant here can reach them. Pure: text in, text out; `collector.cli` reads and runs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from anonymizer.ddl import Table, parse_schema
from anonymizer.kinds import RECORD_TABLES
from anonymizer.rules import ROLLUPS
from collector.errors import CollectorError

WRITER, ANALYST, AUDITOR = "collector_writer", "analyst", "privacy_auditor"
PROFILE, QUOTA, ALL_ROWS = "collector_readonly", "collector_analyst", "collector_all_rows"
USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
TENANT_COLUMN = "tenant_id"
LOCAL_SUFFIX = "_local"  # a cluster's local tables: DESIGN §10
# reads only; query settings may be sent but never lift these bounds (MIN 1: 0 means no limit)
PROFILE_SETTINGS = (
    "readonly = 2 CONST",
    "allow_ddl = 0 CONST",
    "allow_introspection_functions = 0 CONST",
    "max_execution_time = 60 MIN 1 MAX 60",
    "max_memory_usage = 4000000000 MIN 1 MAX 4000000000",
    "max_result_rows = 1000000 MIN 1 MAX 1000000",
)
QUOTA_LIMITS = "queries = 2000, result_rows = 100000000, read_rows = 100000000000"


@dataclass(frozen=True, slots=True)
class TenantUser:
    """A person's ClickHouse user, bound to one tenant. The password is held only as the
    salted SHA-256 ClickHouse stores (`sha256_hash ... SALT`), so the SQL never carries it."""

    tenant: str
    user: str
    sha256_hex: str
    salt: str


def tenant_user(tenant: str, user: str, password: str) -> TenantUser:
    if not USER_NAME.match(user):
        raise CollectorError(f"--user: must match {USER_NAME.pattern}")
    if len(password) < 12:
        raise CollectorError("the password must be at least 12 characters")
    salt = secrets.token_hex(16)
    digest = hashlib.sha256((password + salt).encode()).hexdigest()
    return TenantUser(tenant, user, digest, salt)


@dataclass(frozen=True, slots=True)
class Schema:
    """The tables people get access to, by role, as the schema defines them."""

    rollups: tuple[str, ...]  # the analyst's
    audited: tuple[str, ...]  # the privacy auditor's: every table of the schema
    record_tables: tuple[str, ...]  # raw (anonymized) tables: the analyst never reads them


def schema(sql_texts: Mapping[str, str], extra_tables: Mapping[str, str] | None = None) -> Schema:
    """From the migration files' text (and `extra_tables`: name -> DDL, e.g. schema_migrations).
    Every rollup must exist and carry `tenant_id`, or no row policy could bind it."""
    tables: dict[str, Table] = dict(parse_schema(sql_texts))
    tables.update(parse_schema(dict(extra_tables or {})))
    for name in (*ROLLUPS, *RECORD_TABLES):
        if name not in tables:
            raise CollectorError(f"table {name} is not in the schema")
    for name in ROLLUPS:
        if TENANT_COLUMN not in {c.name for c in tables[name].columns}:
            raise CollectorError(f"rollup {name} has no {TENANT_COLUMN} column to bind tenants")
    return Schema(tuple(ROLLUPS), tuple(sorted(tables)), tuple(RECORD_TABLES))


def _q(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Builder:
    def __init__(self, database: str, cluster: str) -> None:
        self.database = database
        self.on = f" ON CLUSTER {_q(cluster)}" if cluster else ""
        self.cluster = cluster
        self.out: list[tuple[str, str]] = []

    def tables(self, names: tuple[str, ...]) -> list[str]:
        """Qualified names; on a cluster also the local tables the Distributed ones read (the
        shards run a distributed query as its initial user, with its grants and policies)."""
        both = [(n, n + LOCAL_SUFFIX) if self.cluster else (n,) for n in names]
        return [f"{_q(self.database)}.{_q(t)}" for pair in both for t in pair]

    def add(self, statement: str, comment: str = "") -> None:
        self.out.append((comment, statement))


def grants_sql(
    database: str, tables: Schema, cluster: str = "", person: TenantUser | None = None
) -> list[tuple[str, str]]:
    """(comment, statement) pairs, in the order they must run."""
    b = _Builder(database, cluster)
    db, on = _q(database), b.on
    b.add(f"CREATE ROLE IF NOT EXISTS {WRITER}{on}", "roles")
    b.add(f"CREATE ROLE IF NOT EXISTS {ANALYST}{on}")
    b.add(f"CREATE ROLE IF NOT EXISTS {AUDITOR}{on}")
    b.add(
        f"GRANT{on} CREATE DATABASE ON {db}.* TO {WRITER}",
        f"{WRITER}: the service and `collector migrate` (tables, views, inserts, deletes)",
    )
    b.add(
        f"GRANT{on} SELECT, INSERT, ALTER, CREATE TABLE, CREATE VIEW, DROP TABLE, DROP VIEW, "
        f"OPTIMIZE, SHOW ON {db}.* TO {WRITER}"
    )
    if cluster:
        b.add(f"GRANT{on} CLUSTER ON *.* TO {WRITER}", "ON CLUSTER migrations need it")
    b.add(
        f"CREATE SETTINGS PROFILE IF NOT EXISTS {PROFILE}{on} SETTINGS "
        + ", ".join(PROFILE_SETTINGS)
        + f" TO {ANALYST}, {AUDITOR}",
        "read-only profile for people: no write, no DDL, bounded time, memory and results",
    )
    b.add(
        f"CREATE QUOTA IF NOT EXISTS {QUOTA}{on} KEYED BY user_name "
        f"FOR INTERVAL 1 hour MAX {QUOTA_LIMITS} TO {ANALYST}"
    )
    rollups = b.tables(tables.rollups)
    first = True
    for table in rollups:
        b.add(
            f"GRANT{on} SELECT ON {table} TO {ANALYST}",
            f"{ANALYST}: the rollups only" if first else "",
        )
        first = False
    first = True
    for table in b.tables(tables.audited):
        b.add(
            f"GRANT{on} SELECT ON {table} TO {AUDITOR}",
            f"{AUDITOR}: policy_audit and every table scan-pii reads" if first else "",
        )
        first = False
    first = True
    for table in rollups:
        b.add(
            f"CREATE ROW POLICY IF NOT EXISTS {ALL_ROWS}{on} ON {table} "
            "AS PERMISSIVE FOR SELECT USING 1 TO ALL",
            "every user sees every row unless a restrictive policy binds it to a tenant"
            if first
            else "",
        )
        first = False
    if person is not None:
        _person(b, rollups, person)
    return b.out


def _person(b: _Builder, readable: list[str], p: TenantUser) -> None:
    user, on = _q(p.user), b.on
    b.add(
        f"CREATE USER IF NOT EXISTS {user}{on} IDENTIFIED WITH sha256_hash BY "
        f"{_literal(p.sha256_hex)} SALT {_literal(p.salt)} SETTINGS PROFILE {_q(PROFILE)}",
        f"user {p.user}: an analyst of tenant {p.tenant} only (no role until bound)",
    )
    policy = _q(f"collector_tenant_{p.user}")
    for table in readable:
        b.add(
            f"CREATE ROW POLICY OR REPLACE {policy}{on} ON {table} AS RESTRICTIVE FOR SELECT "
            f"USING {TENANT_COLUMN} = {_literal(p.tenant)} TO {user}"
        )
    b.add(f"GRANT{on} {ANALYST} TO {user}", "bound: now the role")
    b.add(f"ALTER USER {user}{on} DEFAULT ROLE {ANALYST}")


def render(statements: list[tuple[str, str]], header: str) -> str:
    """SQL text: `--` comments, each statement on its own line(s) ending with `;`."""
    lines = [f"-- {line}" for line in header.splitlines()]
    for comment, statement in statements:
        if comment:
            lines += ["", f"-- {comment}"]
        lines.append(statement + ";")
    return "\n".join(lines) + "\n"
