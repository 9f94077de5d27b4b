"""The read-only statement check of `collector sql` and `POST /v1/admin/sql`: what it lets
through is one plain read; what it refuses, the engine's read-only mode alone would not stop
(the scalar `file()`, `INTO OUTFILE`) or could be hidden from the check (heredocs, escapes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonymizer.sql_text import split_statements, tokens
from collector.admin_sql import engine_error, refusal, render
from collector.errors import SinkError

ENGINE_FUNCTIONS = ("file", "url", "s3", "remote", "numbers", "executable", "mysql")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count() FROM access_log",
        "  select 1 ;  ",
        "-- a note\nSELECT tenant_id FROM access_daily /* ; */ WHERE route = 'a;b'",
        "WITH 1 AS x SELECT x",
        "SHOW TABLES",
        "DESCRIBE TABLE access_log",
        "EXPLAIN SELECT 1",
        "EXISTS TABLE access_log",
        "SELECT * FROM numbers(3)",
        "SELECT 'file(' AS f, 'INTO OUTFILE' AS g",  # inside strings: text, not calls
        "SELECT filesystemAvailable()",
        "SELECT `profile` FROM t",
    ],
)
def test_plain_reads_pass(sql: str) -> None:
    assert refusal(sql, ENGINE_FUNCTIONS) == ""


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("INSERT INTO access_log SELECT * FROM access_log", "only reads"),
        ("DROP TABLE access_log", "only reads"),
        ("ALTER TABLE access_log DELETE WHERE 1", "only reads"),
        ("SET readonly = 0", "only reads"),
        ("SELECT 1; DROP TABLE access_log", "exactly one statement"),
        ("", "exactly one statement"),
        ("SELECT file('/data/keys/acme/0.key')", "file() reaches outside"),
        ("SELECT `file`('/etc/passwd')", "file() reaches outside"),
        ("SELECT `\\x66ile`('/etc/passwd')", "escapes are refused"),
        ("SELECT \"file\" ('/etc/passwd')", "file() reaches outside"),
        ("SELECT * FROM url('http://10.0.0.1/', 'CSV', 'a String')", "url() reaches outside"),
        ("SELECT * FROM remote('db', system.one)", "remote() reaches outside"),
        ("SELECT * FROM executable('x', 'CSV', 'a String')", "executable() reaches"),
        ("SELECT * FROM mysql('h', 'd', 't', 'u', 'p')", "mysql() reaches"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO is refused"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS is refused"),
        ("SELECT 1 FORMAT Native", "FORMAT is refused"),
        ("SELECT $$'$$, file('/etc/x'), '$$'", "heredoc"),
        ("/* SELECT */ DELETE FROM access_log WHERE 1", "only reads"),
    ],
)
def test_anything_but_a_plain_read_is_refused(sql: str, why: str) -> None:
    assert why in refusal(sql, ENGINE_FUNCTIONS)


def test_the_engines_own_table_functions_are_refused_beyond_the_known_ones() -> None:
    assert refusal("SELECT * FROM brandNewLake('x')") == ""
    assert "brandNewLake() reaches" in refusal("SELECT * FROM brandNewLake('x')", ["brandNewLake"])


@given(st.text(alphabet="ab'`\"$\\;(), \n-/*#xfile", max_size=40))
def test_no_text_hides_a_file_call_from_the_check(noise: str) -> None:
    """Whatever surrounds it, a statement whose executed text (comments removed, as the engine
    gets it) holds a `file(` call outside string literals is refused; the tokenizer never fails."""
    sql = f"SELECT {noise}"
    statements = split_statements(sql)
    if len(statements) != 1:
        assert refusal(sql) != ""
        return
    toks = list(tokens(statements[0]))
    calls = [
        i
        for i, t in enumerate(toks[:-1])
        if t in (("word", "file"), ("ident", "file")) and toks[i + 1] == ("punct", "(")
    ]
    if calls:
        assert refusal(sql) != ""


def test_engine_errors_name_the_code_never_the_message() -> None:
    e = SinkError(
        "Code: 47. DB::Exception: Unknown identifier `carol@example.com` In scope SELECT "
        "'carol@example.com'. (UNKNOWN_IDENTIFIER)"
    )
    answer = engine_error(e)
    assert answer.status == 400 and answer.detail.endswith("Code 47 (UNKNOWN_IDENTIFIER)")
    assert "carol" not in answer.detail
    big = engine_error(SinkError("Code: 396. DB::Exception: Limit ... (TOO_MANY_ROWS_OR_BYTES)"))
    assert big.status == 413
    ro = engine_error(SinkError("Code: 164. DB::Exception: readonly mode. (READONLY)"))
    assert ro.status == 400 and ro.error == "read only"


def test_render_formats() -> None:
    rows = [{"a": 1, "b": "x,y"}, {"a": 22, "b": None}]
    assert render(rows, "json") == '{"a":1,"b":"x,y"}\n{"a":22,"b":null}\n'
    assert render(rows, "csv") == 'a,b\n1,"x,y"\n22,\n'
    assert render(rows, "table") == "a   b\n--  ---\n1   x,y\n22\n(2 rows)\n"
    assert render([], "table") == "(0 rows)\n" and render([], "csv") == ""
