"""`collector serve --workers N`: what is refused before anything starts."""

import os
from pathlib import Path

import pytest

from collector.cli import default_workers, main


@pytest.mark.parametrize(
    ("extra", "workers", "message"),
    [
        ("", "0", "serve --workers: at least 1"),
        ("[spool]\nenabled = false\n", "2", "needs [spool] enabled = true"),
    ],
)
def test_refused_worker_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, workers: str, message: str
) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "data"}"\n{extra}')
    assert main(["serve", "--config", str(config), "--workers", workers]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # nothing started


def test_default_workers_are_the_usable_cores() -> None:
    """One worker per core this process may run on; one process when there is no spool."""
    assert default_workers(spool_enabled=True) == len(os.sched_getaffinity(0))
    assert default_workers(spool_enabled=False) == 1
