"""End-to-end ingest benchmark (DESIGN §8) beside its floor, measured in the same run.

full:  the collector as shipped (create_app): gzip'd 500-record JSON batches of the real corpus
       -> decode, validate, UA parse, GeoIP (if --geoip), anonymize, group-commit insert, 202.
floor: an aiohttp handler that only orjson.loads the same bodies and inserts the same number of
       already-anonymized rows through the same batcher and chDB sink.

The server runs pinned to core 0 (`taskset -c 0`), the load generator to core 1.
Usage: .venv/bin/python bench/ingest_bench.py [--batches 400] [--concurrency 16] [--geoip FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

API_KEY = "tck_bench-key-0000000000000000"


def corpus_records() -> list[dict[str, object]]:
    from conftest import corpus_lines

    from collector.combined import parse_combined

    return [parse_combined(line) for line in corpus_lines()]


def config(data: Path, geoip: str | None):  # type: ignore[no-untyped-def]
    from collector.auth import hash_key
    from collector.config import BatchConfig, Config, EnrichConfig, StorageConfig, TenantConfig

    return Config(
        storage=StorageConfig(path=data),
        batch=BatchConfig(max_rows=5000, max_delay_ms=20),
        enrich=EnrichConfig(geoip_database=Path(geoip) if geoip else None),
        policy_file=REPO / "policy.toml",
        tenants=(TenantConfig(id="bench", plan="standard", api_key_sha256=(hash_key(API_KEY),)),),
    )


def serve(mode: str, port: int, data: Path, geoip: str | None) -> None:
    from aiohttp import web

    from collector.app import create_app
    from collector.appkeys import BATCHERS, PIPELINE
    from collector.auth import Tenant
    from collector.kinds import ACCESS_LOG

    app = create_app(config(data, geoip))
    if mode == "floor":
        precomputed: list[bytes] = []

        async def floor(request: web.Request) -> web.Response:
            if not precomputed:
                tenant = Tenant("bench", "standard", "k")
                items = [(ACCESS_LOG, r) for r in corpus_records()]
                precomputed.extend(request.app[PIPELINE].process(tenant, items).rows["access_log"])
            records = orjson.loads(await request.read())
            start = (len(records) * hash(records[0]["path"])) % (len(precomputed) - len(records))
            rows = [
                orjson.dumps(orjson.loads(r)) for r in precomputed[start : start + len(records)]
            ]
            await request.app[BATCHERS].submit({"access_log": rows})
            return web.json_response({"accepted": len(rows)}, status=202)

        app.router.add_post("/floor/v1/logs", floor)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def load(
    port: int, bodies: list[bytes], concurrency: int, path: str = "/v1/logs"
) -> tuple[float, list[float]]:
    import aiohttp

    url = f"http://127.0.0.1:{port}{path}"
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    latencies: list[float] = []
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as s:
        for _ in range(100):  # wait for the server
            try:
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)

        async def worker() -> None:
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                async with s.post(url, data=body, headers=headers) as r:
                    assert r.status == 202, await r.text()
                    await r.read()
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(mode: str, bodies: list[bytes], per_body: int, args: argparse.Namespace) -> float:
    data = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-"))
    port = 18000 + (os.getpid() % 1000) + (0 if mode == "full" else 1)
    cmd = [sys.executable, __file__, "--serve", mode, "--port", str(port), "--data", str(data)]
    if args.geoip:
        cmd += ["--geoip", args.geoip]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    server = subprocess.Popen(cmd)
    try:
        # warm-up: the first pass over the corpus fills the UA cache, as steady traffic would
        path = "/v1/logs" if mode == "full" else "/floor/v1/logs"
        asyncio.run(load(port, bodies[: len(bodies) // 4], args.concurrency, path))
        cpu0 = cpu_seconds(server.pid)
        elapsed, lat = asyncio.run(load(port, bodies, args.concurrency, path))
        cpu = cpu_seconds(server.pid) - cpu0
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)
    lat.sort()
    rate = len(bodies) * per_body / elapsed
    p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000
    print(
        f"{mode:5s}: {rate:10,.0f} records/s  ({len(bodies)} x {per_body}-record batches, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, server CPU {cpu / elapsed:.0%} of a core)"
    )
    return rate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--serve", choices=["full", "floor"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--data")
    p.add_argument("--geoip")
    p.add_argument("--batches", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port, Path(args.data), args.geoip)
        return
    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    records = corpus_records()
    for r in records:
        r["time"] = int(r["time"])  # type: ignore[call-overload]
    n = args.batch_size
    bodies = [
        gzip.compress(orjson.dumps([records[(i * n + j) % len(records)] for j in range(n)]))
        for i in range(args.batches)
    ]
    full = run("full", bodies, n, args)
    floor = run("floor", bodies, n, args)
    print(f"full / floor = {full / floor:.2f}  (target: >= 0.5, and full >= 50,000 records/s)")


if __name__ == "__main__":
    main()
