"""The benchmark still runs (tiny load, no timing asserted): a benchmark that rots measures
nothing. Figures come from running it for real (`make bench`), never from this test."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ingest_bench_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "ingest_bench.py"), "--batches", "8", "--batch-size", "50", "--concurrency", "4"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "full :" in out.stdout and "floor:" in out.stdout and "full / floor" in out.stdout
