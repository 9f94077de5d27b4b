"""`python -m anonymizer check | explain | diff | privacy-doc`: exit codes and output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anonymizer.cli import main

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "testdata" / "policies"
SAMPLES = REPO / "testdata" / "explain"
POLICY = str(REPO / "policy.toml")
STRICT = str(POLICIES / "valid_strict.toml")
INVALID = sorted(POLICIES.glob("invalid_*.toml"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# --- check -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "version"), [(POLICY, 1), (STRICT, 7)])
def test_check_valid(capsys: pytest.CaptureFixture[str], path: str, version: int) -> None:
    assert run(capsys, "check", path) == (0, f"ok: version {version}\n", "")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_check_invalid_names_key_and_line(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    key, line = path.read_text().splitlines()[0].removeprefix("# expect: ").split(" line ")
    status, out, err = run(capsys, "check", str(path))
    assert (status, out) == (1, "")
    where = key if line == "None" else f"{key} (line {line})"
    assert err.startswith(f"error: {path}: {where}: "), err


def test_check_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "check", str(tmp_path / "nope.toml"))
    assert status == 1 and "cannot read" in err


# --- explain -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["access_log", "device", "event", "mail_scan"])
def test_explain_prints_the_golden_text(capsys: pytest.CaptureFixture[str], kind: str) -> None:
    record = str(SAMPLES / f"{kind}_record.json")
    args = ["explain", POLICY, record] + ([] if kind == "access_log" else ["--kind", kind])
    status, out, err = run(capsys, *args)
    assert (status, err) == (0, "")
    assert out == (SAMPLES / f"{kind}_record.golden.txt").read_text()


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    record = str(SAMPLES / "mail_scan_record.json")
    status, out, _ = run(capsys, "explain", POLICY, record, "--kind", "mail_scan", "--json")
    assert status == 0
    doc = json.loads(out)
    assert (doc["kind"], doc["table"], doc["policy_version"]) == ("mail_scan", "mail_scans", 1)
    ops = {f["field"]: f["operator"] for f in doc["fields"]}
    assert ops["imb (serial)"] == "pseudonymized" and ops["imb (routing code)"] == "truncated"
    assert doc["row"]["routing_zip"] == "01234"
    assert "0123456709498765432101234567891" not in out and "987654321" not in out


@pytest.mark.parametrize("kind", ["access_log", "device", "event", "mail_scan"])
def test_explain_tells_the_kind_from_the_fields(
    capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    status, out, _ = run(capsys, "explain", POLICY, str(SAMPLES / f"{kind}_record.json"))
    assert status == 0 and out.startswith(f"{kind} record -> ")


@pytest.mark.parametrize(
    ("content", "found"),
    [('{"time": "2026-01-01T00:00:00Z"}', "it fits no kind"), ('{"nope": 1}', "it fits no kind")],
)
def test_explain_without_kind_never_guesses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, found: str
) -> None:
    record = tmp_path / "r.json"
    record.write_text(content)
    status, out, err = run(capsys, "explain", POLICY, str(record))
    assert (status, out) == (1, "")
    assert found in err and "give --kind" in err


def test_explain_kind_is_told_from_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explain", STRICT, str(SAMPLES / "access_log_record.json"))
    assert status == 0 and out.startswith("access_log record -> table access_log, policy version 7")
    assert '"ip_prefix": "203.0.0.0/16"' in out and '"session_pseudonym": ""' in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a record must be one JSON object"),
        ('{"ip": "203.0.113.999", "user_id": "jane"}', "would reject this access_log record: ip: not an IP address"),
    ],
)  # fmt: skip
def test_explain_bad_record(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    record = tmp_path / "r.json"
    record.write_text(content)
    status, out, err = run(capsys, "explain", POLICY, str(record))
    assert (status, out) == (1, "")
    assert message in err and "203.0.113.999" not in err and "jane" not in err


def test_explain_with_an_invalid_policy(capsys: pytest.CaptureFixture[str]) -> None:
    bad = str(POLICIES / "invalid_ipv4_prefix.toml")
    status, _, err = run(capsys, "explain", bad, str(SAMPLES / "access_log_record.json"))
    assert status == 1 and "ip.ipv4_prefix (line 4)" in err


def test_explain_unknown_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "explain", POLICY, "r.json", "--kind", "otlp")
    assert status == 2 and "invalid choice" in err


# --- diff --------------------------------------------------------------------------------------


def test_diff_equal(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "diff", POLICY, POLICY) == (0, "no differences\n", "")


def test_diff_lists_each_change_and_its_effect(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "diff", POLICY, STRICT)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "version: 1 -> 7"
    assert "ip.ipv4_prefix: 24 -> 16" in lines
    assert "    access_log.ip -> access_log.ip_prefix: truncated" in lines
    assert 'geo.granularity: "city" -> "country"' in lines
    assert "    device.device_id -> device_info.device_pseudonym: pseudonymized -> dropped" in lines
    assert "retention.days: 395 -> 30" in lines


def test_diff_with_an_invalid_policy(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "diff", POLICY, str(POLICIES / "invalid_rotation.toml"))
    assert (status, out) == (1, "") and "identifiers.rotation (line 4)" in err


# --- privacy-doc -------------------------------------------------------------------------------


def test_privacy_doc_to_stdout_and_to_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = run(capsys, "privacy-doc", POLICY, str(REPO / "sql"))
    assert status == 0 and out == (REPO / "docs" / "privacy.md").read_text()
    target = tmp_path / "privacy.md"
    status, printed, _ = run(
        capsys, "privacy-doc", POLICY, str(REPO / "sql"), "--output", str(target)
    )
    assert (status, printed) == (0, f"wrote {target}\n")
    assert target.read_text() == out


def test_privacy_doc_refuses_a_column_without_a_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for sql in (REPO / "sql").glob("*.sql"):
        (tmp_path / sql.name).write_text(sql.read_text())
    (tmp_path / "0999_raw_ip.sql").write_text("ALTER TABLE access_log ADD COLUMN raw_ip String;\n")
    status, out, err = run(capsys, "privacy-doc", POLICY, str(tmp_path))
    assert (status, out) == (1, "")
    assert "0999_raw_ip.sql: column access_log.raw_ip has no rule in anonymizer/rules.py" in err


def test_privacy_doc_needs_a_sql_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "privacy-doc", POLICY, str(tmp_path / "none"))[0] == 1
    status, _, err = run(capsys, "privacy-doc", POLICY, str(tmp_path))
    assert status == 1 and "no .sql files" in err


# --- the command itself ------------------------------------------------------------------------


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys)
    assert status == 2 and "usage: anonymizer" in err


def test_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anonymizer", "check", POLICY],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "ok: version 1\n")
