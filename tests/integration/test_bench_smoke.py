"""The benchmark still runs (tiny load, no timing asserted): a benchmark that rots measures
nothing. Figures come from running it for real (`make bench`), never from this test."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ingest_bench_runs(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "ingest_bench.py"), "--batches", "8",
         "--batch-size", "50", "--concurrency", "4", "--phase-s", "1", "--results", str(results)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "full / floor" in out.stdout
    text = results.read_text()
    # DESIGN §10: a table whose columns include records/s, floor and ratio
    header = next(line for line in text.splitlines() if line.startswith("| run |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert {"records/s", "floor", "ratio"} <= set(columns)
    rows = [line for line in text.splitlines() if line.startswith(("| full vs", "| full, "))]
    assert len(rows) == 3 and all(len(r.strip("|").split("|")) == len(columns) for r in rows)
    for measure in (
        "half load", "2x overload", "2 workers / 1 worker", "SIGTERM exit codes", "server engine"
    ):  # fmt: skip
        assert measure in text
    assert "Date:" in text and "nproc" in text and "load average at start" in text
    assert "Command: `make bench`" in text
    # every server stopped cleanly on SIGTERM (exit 0), the two-worker supervisor included
    assert "{'full-1': 0, 'floor': 0, 'full-2': 0, 'full-1-server': 0}" in text
