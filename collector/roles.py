"""A process's part in `serve --workers N` (collector/workers.py), and the paths the processes
share. A module of its own: the app state (appkeys) names it, and the workers module uses both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collector.config import Config


@dataclass(frozen=True, slots=True)
class Role:
    kind: str  # "primary" (holds the engine, ships every spool) or "ingest"
    index: int
    workers: int


def primary_socket(config: Config) -> Path:
    """Where the primary listens for the requests the ingest workers forward."""
    return config.storage.path / "run" / "primary.sock"


def workers_spool_root(config: Config) -> Path:
    """The ingest workers' spools: `<root>/w<k>/<table>/`."""
    return config.storage.path / "spool" / "workers"
