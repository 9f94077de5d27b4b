"""Insert throughput of the storage engines, measured in one run on the same rows (issue 10).

Rows: the real access-log corpus through the collector's own pipeline (decode, UA parse,
anonymize), 10,000 anonymized `access_log` rows repeated to `--rows` (default 100,000), inserted
in batches of 5,000 (the batcher's `max_rows`), each with its own dedup token.

- embedded:      `ChdbSink.insert`: JSONEachRow file in the data folder + `INSERT ... SELECT *
                 FROM file(...)` (today's embedded engine)
- cc-chdb:       clickhouse-connect's in-process chDB backend (`interface="chdb"`, experimental,
                 sync only): `raw_insert` of the same JSONEachRow bytes
- server:        `ClickHouseSink.insert` (clickhouse-connect over HTTP, LZ4) into the test-only
                 ClickHouse server (tests/chserver.py: chDB behind the HTTP interface, another
                 process on this machine)

Each round runs each engine in its own process (chDB holds one data path per process), the
engines interleaved; best and median of `--repeat` rounds.
Usage: .venv/bin/python bench/sink_bench.py [--rows 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BATCH = 5_000


def make_rows(path: Path, n: int, work: Path) -> None:
    """`n` anonymized access_log rows (NDJSON) from the corpus, through the real pipeline."""
    from collector.auth import Tenant
    from collector.combined import parse_combined
    from collector.enrich import Enricher, GeoIp, UserAgentParser
    from collector.keys import KeyStore
    from collector.kinds import ACCESS_LOG
    from collector.pipeline import Pipeline
    from collector.policies import PolicyStore
    from collector.salts import SaltStore
    from tests.conftest import corpus_lines

    pipeline = Pipeline(
        PolicyStore(REPO / "policy.toml", work / "policies", ["bench"]),
        KeyStore(work / "keys"),
        SaltStore(work / "salts"),
        Enricher(UserAgentParser(16_384), GeoIp(None)),
    )
    items = [(ACCESS_LOG, parse_combined(line)) for line in corpus_lines()]
    rows = pipeline.process(Tenant("bench", "standard", "k"), items).rows["access_log"]
    with open(path, "wb") as f:
        for i in range(n):
            f.write(rows[i % len(rows)] + b"\n")


def batches(path: Path) -> list[bytes]:
    lines = path.read_bytes().splitlines()
    return [b"\n".join(lines[i : i + BATCH]) for i in range(0, len(lines), BATCH)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(insert: object, data: list[bytes], server_pid: int = 0) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and of the server process if any)."""
    own, other = cpu_seconds(os.getpid()), cpu_seconds(server_pid) if server_pid else 0.0
    t0 = time.perf_counter()
    for body in data:
        insert(body, uuid.uuid4().hex)  # type: ignore[operator]
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(os.getpid()) - own
    if server_pid:
        cpu += cpu_seconds(server_pid) - other
    return wall, cpu


def run_engine(engine: str, rows: Path, work: Path, repeat: int) -> list[tuple[float, float]]:
    """In this process: migrate a fresh schema, then time `repeat` rounds of every batch."""
    from collector import rollups
    from collector.config import StorageConfig
    from collector.sink_chdb import ChdbSink
    from collector.sink_clickhouse import ClickHouseSink

    data = batches(rows)
    out = []
    if engine == "embedded":
        sink = ChdbSink(work / "chdb", "bench", work / "tmp")
        rollups.migrate(sink)
        for _ in range(repeat):
            out.append(timed(lambda b, t: sink.insert("access_log", b, t), data))
        sink.close()
    elif engine == "cc-chdb":
        import clickhouse_connect

        from collector.migrate import Migration, apply_migrations

        client = clickhouse_connect.get_client(interface="chdb", path=str(work / "ccchdb"))
        client.command("CREATE DATABASE IF NOT EXISTS bench")
        client.database = "bench"

        def applied() -> set[int]:
            versions = client.query("SELECT version FROM schema_migrations").result_rows
            return {int(r[0]) for r in versions}

        def record(m: Migration) -> None:
            client.command(
                "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                parameters={"v": m.version, "n": m.name},
            )

        apply_migrations(client.command, applied, record)
        for _ in range(repeat):
            out.append(
                timed(
                    lambda b, t: client.raw_insert(
                        "access_log", None, b, settings={"insert_deduplication_token": t},
                        fmt="JSONEachRow",
                    ),
                    data,
                )
            )  # fmt: skip
        client.close()
    else:
        from tests.chserver import running_chserver

        with running_chserver(work / "server") as server:
            sink = ClickHouseSink(
                StorageConfig(engine="clickhouse", url=server.url, database="bench", timeout_s=300)
            )
            rollups.migrate(sink)
            for _ in range(repeat):
                out.append(
                    timed(lambda b, t: sink.insert("access_log", b, t), data, server.proc.pid)
                )
            n = sink.query("SELECT count() AS n FROM access_log")[0]["n"]
            assert n == len(data) * BATCH * repeat or n > 0, n
            sink.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--engine", help=argparse.SUPPRESS)
    p.add_argument("--rows-file", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.engine:  # a child: one engine, its seconds per round as JSON
        secs = run_engine(args.engine, Path(args.rows_file), Path(args.work), args.repeat)
        print(json.dumps(secs))
        return
    engines = ("embedded", "cc-chdb", "server")
    walls: dict[str, list[float]] = {e: [] for e in engines}
    cpus: dict[str, list[float]] = {e: [] for e in engines}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = work / "rows.ndjson"
        make_rows(rows, args.rows, work / "gen")
        size = rows.stat().st_size
        # rounds interleave the engines (order rotated), so a busy moment of a shared machine
        # does not fall on one engine only
        for r in range(args.repeat):
            for engine in engines[r % 3 :] + engines[: r % 3]:
                out = subprocess.run(
                    [sys.executable, __file__, "--engine", engine, "--rows-file", str(rows),
                     "--work", str(work / engine), "--repeat", "1"],
                    capture_output=True, text=True, check=True, cwd=REPO,
                )  # fmt: skip
                for wall, cpu in json.loads(out.stdout.strip().splitlines()[-1]):
                    walls[engine].append(wall)
                    cpus[engine].append(cpu)
    print(f"{args.rows:,} access_log rows ({size / args.rows:.0f} bytes each as JSON), "
          f"batches of {BATCH:,}, {args.repeat} interleaved rounds; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print("| engine | wall s (median) | rows/s (median) | rows/s (best) | CPU s (median) |")
    print("| --- | --- | --- | --- | --- |")
    for engine in engines:
        median, best = statistics.median(walls[engine]), min(walls[engine])
        cpu = statistics.median(cpus[engine])
        print(f"| {engine} | {median:.3f} | {args.rows / median:,.0f} | {args.rows / best:,.0f} "
              f"| {cpu:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
