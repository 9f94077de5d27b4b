"""`collector serve --workers N`: what is refused before anything starts."""

from pathlib import Path

import pytest

from collector.cli import main


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
