"""The server sink against the test-only ClickHouse server (tests/chserver.py, chDB behind the
ClickHouse HTTP interface): the same calls as the embedded engine, and each failure mapped at
the boundary to `SinkUnavailable` (retry) or `SinkError` (loud)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import rollups
from collector.config import StorageConfig
from collector.errors import MigrationError, SinkError, SinkUnavailable
from collector.migrate import SQL_DIR, discover
from collector.sink_clickhouse import ClickHouseSink
from collector.storage import open_sink
from tests.chserver import ChServer


def row(n: int, retention_days: int = 30) -> bytes:
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    return orjson.dumps(
        {"tenant_id": "acme", "time": f"{now}.000", "path": f"/p/{n}", "status": 200,
         "retention_days": retention_days}
    )  # fmt: skip


@pytest.fixture
def sink(server_storage: StorageConfig) -> Iterator[ClickHouseSink]:
    s = open_sink(server_storage)
    assert isinstance(s, ClickHouseSink)
    yield s
    s.close()


def test_migrations_apply_once_then_are_a_no_op(sink: ClickHouseSink, chserver: ChServer) -> None:
    names = [m.name for m in discover(SQL_DIR)]
    assert rollups.migrate(sink) == names
    assert rollups.migrate(sink) == []
    versions = sink.query("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in versions] == [m.version for m in discover(SQL_DIR)]
    tables = chserver.query(
        "SELECT name FROM system.tables WHERE database = {d:String} ORDER BY name",
        params={"d": sink.database},
    )
    assert {"access_log", "access_daily", "access_daily_mv", "policy_audit"} <= {
        t["name"] for t in tables
    }


def test_a_retried_insert_with_its_token_is_stored_once(sink: ClickHouseSink) -> None:
    rollups.migrate(sink)
    rows = b"\n".join(row(i) for i in range(3))
    sink.insert("access_log", rows, "tok1")
    sink.insert("access_log", rows, "tok1")
    sink.insert("access_log", rows, "tok2")
    assert sink.query("SELECT count() AS n FROM access_log") == [{"n": 6}]


def test_an_insert_whose_answer_is_lost_is_unavailable_and_its_retry_stored_once(
    sink: ClickHouseSink, chserver: ChServer
) -> None:
    rollups.migrate(sink)
    before = chserver.stats()["inserts"]
    chserver.fault("drop_after_insert", times=2)  # the client's own replay is dropped too
    with pytest.raises(SinkUnavailable):
        sink.insert("access_log", row(1) + b"\n" + row(2), "lost1")
    assert chserver.stats()["inserts"] - before == 2  # applied on the server, answer lost twice
    sink.insert("access_log", row(1) + b"\n" + row(2), "lost1")
    assert sink.query("SELECT count() AS n FROM access_log") == [{"n": 2}]


def test_query_binds_parameters_on_the_server(sink: ClickHouseSink) -> None:
    rollups.migrate(sink)
    sink.insert("access_log", b"\n".join(row(i) for i in range(5)), "p1")
    got = sink.query(
        "SELECT path FROM access_log WHERE tenant_id = {t:String} AND path IN {ps:Array(String)} "
        "ORDER BY path",
        {"t": "acme", "ps": ["/p/1", "/p/3", "it's"]},
    )
    assert got == [{"path": "/p/1"}, {"path": "/p/3"}]
    assert sink.query("SELECT {s:String} AS s", {"s": "a'b\\c"}) == [{"s": "a'b\\c"}]
    # rows shaped as the embedded engine gives them (a server's default would quote the UInt64)
    assert sink.query("SELECT toUInt64(7) AS n, 1.5 AS f") == [{"n": 7, "f": 1.5}]


def test_rollup_rebuild_and_delete_run_through_query(sink: ClickHouseSink) -> None:
    rollups.migrate(sink)
    sink.insert("access_log", b"\n".join(row(i) for i in range(4)), "r1")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    sink.query("DELETE FROM access_log WHERE path = {p:String}", {"p": "/p/0"})
    rollups.rebuild_days(sink, "access_log", "acme", [day])
    got = sink.query("SELECT sum(requests) AS n FROM access_daily WHERE tenant_id = 'acme'")
    assert got == [{"n": 3}]


def test_probe_checks_the_table_and_the_server(sink: ClickHouseSink, chserver: ChServer) -> None:
    rollups.migrate(sink)
    sink.probe("access_log")
    with pytest.raises(SinkError) as e:
        sink.probe("no_such_table")
    assert not isinstance(e.value, SinkUnavailable) and "UNKNOWN_TABLE" in str(e.value)
    chserver.fault("refuse")
    with pytest.raises(SinkUnavailable):
        sink.probe("access_log")
    chserver.fault("none")
    sink.probe("access_log")  # the same sink reconnects


@pytest.mark.parametrize(
    ("code", "unavailable"),
    [(241, True), (252, True), (60, False), (62, False), (497, False)],
)
def test_server_errors_are_transient_or_loud_by_code(
    sink: ClickHouseSink, chserver: ChServer, code: int, unavailable: bool
) -> None:
    chserver.query(f"CREATE DATABASE {sink.database}")
    sink.query("SELECT 1 AS x")  # connected
    chserver.fault("error", code=code, times=1)
    with pytest.raises(SinkError) as e:
        sink.query("SELECT 1 AS x")
    assert isinstance(e.value, SinkUnavailable) is unavailable
    assert f"Code: {code}." in str(e.value)
    assert chserver.url.split("//")[1] not in str(e.value)  # no address in the message


def test_a_proxy_answering_for_an_absent_server_is_unavailable(
    sink: ClickHouseSink, chserver: ChServer
) -> None:
    chserver.query(f"CREATE DATABASE {sink.database}")
    sink.query("SELECT 1 AS x")
    chserver.fault("gateway", times=1)
    with pytest.raises(SinkUnavailable):
        sink.query("SELECT 1 AS x")
    assert sink.query("SELECT 1 AS x") == [{"x": 1}]


def test_a_hung_server_is_unavailable_after_the_timeout(
    server_storage: StorageConfig, chserver: ChServer
) -> None:
    sink = ClickHouseSink(replace(server_storage, timeout_s=1))
    chserver.query(f"CREATE DATABASE {sink.database}")
    try:
        sink.query("SELECT 1 AS x")
        chserver.fault("hang")
        t0 = time.monotonic()
        with pytest.raises(SinkUnavailable):
            sink.query("SELECT 1 AS x")
        assert time.monotonic() - t0 < 20
    finally:
        chserver.fault("none")
        sink.close()


def test_opening_never_connects_and_a_refused_server_is_unavailable(
    server_storage: StorageConfig, chserver: ChServer
) -> None:
    chserver.fault("refuse")
    sink = open_sink(server_storage)  # no connection yet: the service can start
    with pytest.raises(SinkUnavailable):
        sink.migrate()
    chserver.fault("none")
    assert sink.migrate()
    sink.close()
    with pytest.raises(SinkUnavailable):
        sink.query("SELECT 1")


def test_credentials_from_the_password_file_and_failures_without_secrets(
    server_storage: StorageConfig, chserver: ChServer, tmp_path: Path
) -> None:
    chserver.query(f"CREATE DATABASE {server_storage.database}")
    chserver.set_users({"collector": "pw-from-file-123"})
    pw = tmp_path / "ch.pw"
    pw.write_text("pw-from-file-123\n")
    good = ClickHouseSink(replace(server_storage, user="collector", password_file=pw))
    assert good.query("SELECT 1 AS x") == [{"x": 1}]
    good.close()
    pw.write_text("wrong-password-456\n")  # read at each connect
    bad = ClickHouseSink(replace(server_storage, user="collector", password_file=pw))
    with pytest.raises(SinkError) as e:
        bad.query("SELECT 1 AS x")
    assert "AUTHENTICATION_FAILED" in str(e.value) and "wrong-password" not in str(e.value)
    assert not isinstance(e.value, SinkUnavailable)
    bad.close()


def test_a_schema_error_in_a_migration_is_loud(
    server_storage: StorageConfig, tmp_path: Path
) -> None:
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "0001_bad.sql").write_text("CREATE TABLE t (a UInt8) ENGINE = NoSuchEngine;\n")
    sink = ClickHouseSink(server_storage, sql_dir=sql)
    with pytest.raises(MigrationError, match=r"^0001_bad\.sql: Code: \d+\."):
        sink.migrate()
    sink.close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChServer, Path]]:
    """The test server over HTTPS with a certificate from a private CA (trustme)."""
    import trustme

    from tests.chserver import running_chserver

    work = tmp_path_factory.mktemp("chtls")
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(work / "server.pem")
    ca.cert_pem.write_to_path(work / "ca.pem")
    with running_chserver(work / "data", tls_cert=work / "server.pem") as server:
        server.query("CREATE DATABASE telemetry")
        yield server, work / "ca.pem"


def test_https_with_the_configured_ca_and_loud_when_the_certificate_is_not_trusted(
    tls_server: tuple[ChServer, Path], tmp_path: Path
) -> None:
    server, ca_file = tls_server
    assert server.url.startswith("https://")
    base = StorageConfig(engine="clickhouse", path=tmp_path, url=server.url, timeout_s=5)
    trusted = ClickHouseSink(replace(base, ca_file=ca_file))
    assert trusted.query("SELECT 1 AS x") == [{"x": 1}]
    trusted.close()
    untrusted = ClickHouseSink(base)  # the system CAs do not know the private CA
    with pytest.raises(SinkError) as e:
        untrusted.query("SELECT 1 AS x")
    assert not isinstance(e.value, SinkUnavailable) and "storage.ca_file" in str(e.value)
    untrusted.close()
    unverified = ClickHouseSink(replace(base, verify=False))
    assert unverified.query("SELECT 1 AS x") == [{"x": 1}]
    unverified.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    items=st.lists(st.text(st.characters(exclude_categories=("Cs",)), max_size=8), max_size=4),
)
def test_any_text_parameter_round_trips_through_the_server(
    sink: ClickHouseSink, chserver: ChServer, text: str, items: list[str]
) -> None:
    """Subject ids, tenant ids and days reach the server as bound parameters, never as SQL text:
    quotes, backslashes, newlines and tabs come back unchanged."""
    chserver.query(f"CREATE DATABASE IF NOT EXISTS {sink.database}")
    got = sink.query("SELECT {s:String} AS s, {a:Array(String)} AS a", {"s": text, "a": items})
    assert got == [{"s": text, "a": items}]
