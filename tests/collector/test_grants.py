"""`collector grants`: every statement parses in ClickHouse (chDB's `formatQuery`), and the
grants mean what docs/security.md promises: analysts read rollups only, bound to one tenant by a
restrictive row policy on every table they can read; nothing reaches keys or raw tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from anonymizer.kinds import RECORD_TABLES
from anonymizer.rules import ROLLUPS
from anonymizer.sql_text import split_statements
from collector import grants
from collector.cli import _grant_schema, main
from collector.errors import CollectorError
from collector.sink_chdb import ChdbSink

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbSink]:
    """One chDB engine for the module: it holds one data path per process, closed after."""
    path = tmp_path_factory.mktemp("grants")
    sink = ChdbSink(path / "chdb", "grants_test", path / "tmp")
    yield sink
    sink.close()


def formatted(engine: ChdbSink, statement: str) -> str:
    """ClickHouse's own parser: raises (code 62) on a syntax error."""
    rows = engine.query("SELECT formatQuery({q:String}) AS f", {"q": statement})
    return str(rows[0]["f"])


def sql(cluster: str = "", person: grants.TenantUser | None = None) -> str:
    return grants.render(grants.grants_sql("telemetry", _grant_schema(), cluster, person), "h")


ANA = grants.tenant_user("acme", "ana", PASSWORD)


@pytest.mark.parametrize("cluster", ["", "prod"])
def test_every_statement_parses_in_clickhouse(engine: ChdbSink, cluster: str) -> None:
    statements = split_statements(sql(cluster, ANA))
    assert len(statements) > 20
    for statement in statements:
        assert formatted(engine, statement)
        if cluster:
            assert "ON CLUSTER `prod`" in statement


def test_the_parser_check_is_real(engine: ChdbSink) -> None:
    from collector.errors import SinkError

    with pytest.raises(SinkError, match="SYNTAX_ERROR"):
        formatted(engine, "GRANT SELEKT ON t TO analyst")


def test_output_is_only_sql_with_comments_and_terminated_statements() -> None:
    text = sql("", ANA)
    for line in text.splitlines():
        assert not line or line.startswith("-- ") or line.endswith(";")


def _grants_to(text: str, role: str) -> list[str]:
    return [
        s for s in split_statements(text) if s.startswith("GRANT") and s.endswith(f" TO {role}")
    ]


def test_the_analyst_reads_the_rollups_and_nothing_else() -> None:
    text = sql("", ANA)
    granted = _grants_to(text, grants.ANALYST)
    tables = {re.search(r"ON `telemetry`\.`(\w+)`", g)[1] for g in granted}  # type: ignore[index]
    assert tables == set(ROLLUPS)
    assert all(re.fullmatch(r"GRANT SELECT ON `telemetry`\.`\w+` TO analyst", g) for g in granted)
    assert not tables & set(RECORD_TABLES) and "policy_audit" not in tables
    for g in granted:  # no wildcard, no write, no function or source that reaches files
        assert ".*" not in g and "INSERT" not in g and "FILE" not in g and "URL" not in g


def test_the_tenant_user_is_bound_on_every_table_it_can_read_before_it_gets_the_role() -> None:
    statements = split_statements(sql("prod", ANA))
    policies = [s for s in statements if s.startswith("CREATE ROW POLICY OR REPLACE")]
    bound = {re.search(r" ON `telemetry`\.`(\w+)` AS RESTRICTIVE", p)[1] for p in policies}  # type: ignore[index]
    readable = set(ROLLUPS) | {f"{t}_local" for t in ROLLUPS}  # a cluster's local tables too
    assert bound == readable
    for p in policies:  # the tenant as a string literal, to this user only
        assert p.endswith("FOR SELECT USING tenant_id = 'acme' TO `ana`")
    role = statements.index("GRANT ON CLUSTER `prod` analyst TO `ana`")
    create = next(i for i, s in enumerate(statements) if s.startswith("CREATE USER"))
    assert create < min(statements.index(p) for p in policies)
    assert max(statements.index(p) for p in policies) < role
    assert "DEFAULT ROLE" not in statements[create]  # no role until bound


def test_every_readable_table_has_a_permissive_policy_so_others_keep_their_rows() -> None:
    statements = split_statements(sql())
    permissive = [s for s in statements if "AS PERMISSIVE" in s]
    assert {re.search(r"`(\w+)` AS PERMISSIVE", s)[1] for s in permissive} == set(ROLLUPS)  # type: ignore[index]
    assert all(s.endswith("USING 1 TO ALL") for s in permissive)


def test_the_privacy_auditor_reads_the_audit_and_every_table_scan_pii_reads() -> None:
    granted = _grants_to(sql(), grants.AUDITOR)
    tables = {re.search(r"`telemetry`\.`(\w+)`", g)[1] for g in granted}  # type: ignore[index]
    assert {"policy_audit", "schema_migrations", *RECORD_TABLES, *ROLLUPS} <= tables
    assert all(g.startswith("GRANT SELECT ON") for g in granted)


def test_people_get_a_read_only_profile_and_analysts_a_quota() -> None:
    statements = split_statements(sql())
    profile = next(s for s in statements if s.startswith("CREATE SETTINGS PROFILE"))
    assert "readonly = 2 CONST" in profile and profile.endswith("TO analyst, privacy_auditor")
    quota = next(s for s in statements if s.startswith("CREATE QUOTA"))
    assert "KEYED BY user_name" in quota and quota.endswith("TO analyst")


def test_the_password_never_appears_only_its_salted_hash() -> None:
    import hashlib

    text = sql("", ANA)
    assert PASSWORD not in text
    assert hashlib.sha256((PASSWORD + ANA.salt).encode()).hexdigest() in text
    other = grants.tenant_user("acme", "ana", PASSWORD)
    assert other.salt != ANA.salt and other.sha256_hex != ANA.sha256_hex


@pytest.mark.parametrize("user", ["", "a b", "x`y", "1abc", "a" * 64, "ana;DROP"])
def test_user_names_are_checked(user: str) -> None:
    with pytest.raises(CollectorError, match="--user"):
        grants.tenant_user("acme", user, PASSWORD)


def test_a_rollup_without_tenant_id_cannot_be_bound() -> None:
    texts = {
        p.name: p.read_text() for p in sorted((Path(__file__).parents[2] / "sql").glob("*.sql"))
    }
    texts["0008_rollups.sql"] = texts["0008_rollups.sql"].replace(
        "tenant_id LowCardinality(String),\n    day Date,\n    service", "day Date,\n    service", 1
    )
    with pytest.raises(CollectorError, match="access_daily has no tenant_id"):
        grants.schema(texts)


def _config(tmp_path: Path, engine: str = "") -> Path:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[storage]\npath = "d"\n{engine}\n[[tenants]]\nid = "acme"\n'
        f'api_key_sha256 = ["{"a" * 64}"]\n'
    )
    return config


def test_the_cli_prints_the_sql_and_refuses_apply_on_the_embedded_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    args = ["grants", "--config", str(config), "--tenant", "acme", "--user", "ana"]
    assert main([*args, "--password-file", str(tmp_path / "pw")]) == 0
    out = capsys.readouterr().out
    assert "TO `ana`" in out and PASSWORD not in out
    assert main([*args, "--password-file", str(tmp_path / "pw"), "--apply"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "embedded engine (chDB) has no users, roles" in captured.err
    assert not (tmp_path / "d").exists()  # refused before anything was opened
    assert main(["grants", "--config", str(config), "--tenant", "nope", "--user", "x"]) == 2
    assert "no tenant 'nope'" in capsys.readouterr().err
    assert main(["grants", "--config", str(config), "--tenant", "acme"]) == 2
