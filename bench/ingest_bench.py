"""End-to-end ingest benchmark (DESIGN §8, issue 11) beside its floor, in one run; writes
bench/RESULTS.md.

Bodies: gzip'd JSON batches of 500 records cycling through the real access-log corpus (the same
bodies for every phase). Each server runs in its own process on its own data folder.

full   `collector serve --workers N` as shipped: aiohttp (gunzip) -> decode -> validate -> UA
       parse -> GeoIP (with --geoip) -> anonymize -> row serialization -> spool append + group
       fsync -> 202; the shipper inserts the spool's segments into chDB (rollup views included).
floor  the same app and HTTP server with one extra route that does only what cannot be avoided:
       aiohttp (gunzip) + `orjson.loads` of the body, then the same number of already-anonymized
       rows re-serialized (`orjson.dumps`), the same spool append + group fsync (the 202 waits for
       it, as the full path's does) and the same shipper inserting into the same tables.

records/s counts from the first request until every acknowledged row is inserted (the spool is
empty), so a shipper that falls behind is not hidden by fast acknowledgements.

Phases (server pinned with `taskset`; the load generator on the other core where there is one):
 1. full, 1 worker, core 0: closed loop (`--concurrency` requests in flight) -> max records/s
 2. the same server, open loop at half that rate for `--phase-s`: p50/p99 ack latency
 3. the same server, open loop at twice that rate for `--phase-s`: 202s, 503s, peak RSS
 4. floor, core 0: closed loop -> records/s; ratio = full / floor
 5. full, 2 workers, cores 0-1 (the load generator shares them): closed loop -> scaling
 6. full, 1 worker, core 0, server engine: the ClickHouse test server (tests/chserver.py, chDB
    in a process of its own) on core 1 beside the load generator -> what the collector itself
    costs per record when the engine's inserts and merges run elsewhere, as in production

Usage: .venv/bin/python bench/ingest_bench.py [--batches 1000] [--batch-size 500]
       [--concurrency 16] [--phase-s 8] [--geoip FILE|none] [--results bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

API_KEY = "tck_bench-key-0000000000000000"
TARGET_PER_CORE = 50_000
FLOOR_PATH = "/floor/v1/logs"


def corpus_records() -> list[dict[str, object]]:
    from conftest import corpus_lines

    from collector.combined import parse_combined

    return [parse_combined(line) for line in corpus_lines()]


def config_text(port: int, data: Path, geoip: str | None, storage: str = "") -> str:
    from collector.auth import hash_key

    geo = f'[geoip]\ndatabase = "{geoip}"\n' if geoip else ""
    return f"""
[server]
host = "127.0.0.1"
port = {port}

[storage]
path = "{data}"
{storage}

[policy]
file = "{REPO / "policy.toml"}"
{geo}
[[tenants]]
id = "bench"
plan = "standard"
api_key_sha256 = ["{hash_key(API_KEY)}"]
"""


def geolite2_city() -> str | None:
    """The GeoLite2 City database (2018) shipped in the maxminddb-geolite2 package, if installed."""
    try:
        import _maxminddb_geolite2  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(_maxminddb_geolite2.__file__).parent / "GeoLite2-City.mmdb"
    return str(path) if path.is_file() else None


# ---- the floor server (a process of its own, started by this script with --serve-floor)


def serve_floor(config_path: Path) -> None:
    from aiohttp import web

    from collector.app import create_app
    from collector.appkeys import PIPELINE, SPOOL
    from collector.auth import Tenant
    from collector.config import load_config
    from collector.kinds import ACCESS_LOG
    from collector.server import serve

    config = load_config(config_path)
    app = create_app(config)
    precomputed: list[bytes] = []

    async def floor(request: web.Request) -> web.Response:
        if not precomputed:  # the corpus anonymized once (warm-up), so the rows are real
            tenant = Tenant("bench", "standard", "k")
            items = [(ACCESS_LOG, r) for r in corpus_records()]
            precomputed.extend(request.app[PIPELINE].process(tenant, items).rows["access_log"])
        records = orjson.loads(await request.read())  # aiohttp has gunzipped it
        start = (len(records) * hash(records[0]["path"])) % (len(precomputed) - len(records))
        rows = [
            bytes(memoryview(orjson.dumps(orjson.loads(r))))
            for r in precomputed[start : start + len(records)]
        ]
        ticket = await request.app[SPOOL].submit({"access_log": rows})
        ticket.release()
        return web.json_response({"accepted": len(rows)}, status=202)

    app.router.add_post(FLOOR_PATH, floor)
    asyncio.run(serve(app, "127.0.0.1", config.server.port, None, config.server))


# ---- processes


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (the supervisor and its workers), from /proc."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes (all their threads), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int, key: str = "VmRSS:") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def spool_pending(data: Path) -> bool:
    """Rows still waiting to be inserted: a non-empty segment file anywhere in the spool
    (the shipper deletes a segment once the engine confirmed it)."""
    root = data / "spool"
    for path in root.rglob("*"):
        if path.suffix in (".seg", ".open") and path.is_file():
            try:
                if path.stat().st_size > 0:
                    return True
            except FileNotFoundError:
                continue
    return False


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    data: Path
    path: str

    def pids(self) -> list[int]:
        return descendants(self.proc.pid)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def launch(
    mode: str, workers: int, cores: str | None, geoip: str | None, tmp: Path, storage: str = ""
) -> Server:
    """`storage`: more `[storage]` keys (the server engine's)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    folder = tmp / f"{mode}-{workers}{'-server' if storage else ''}"
    data = folder / "data"
    folder.mkdir(parents=True)
    config = folder / "collector.toml"
    config.write_text(config_text(port, data, geoip, storage))
    if mode == "floor":
        cmd = [sys.executable, __file__, "--serve-floor", str(config)]
    else:
        cmd = [sys.executable, "-m", "collector", "serve", "--config", str(config)]
        cmd += ["--workers", str(workers)]
    if cores is not None:
        cmd = ["taskset", "-c", cores, *cmd]
    log = (folder / "service.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    return Server(mode, proc, port, data, FLOOR_PATH if mode == "floor" else "/v1/logs")


# ---- load


HEADERS = {
    "Authorization": f"Bearer {API_KEY}",
    "Content-Type": "application/json",
    "Content-Encoding": "gzip",
}


@dataclass
class Load:
    elapsed_s: float = 0.0  # first request to last answer
    shipped_s: float = 0.0  # first request to an empty spool
    latencies: list[float] = field(default_factory=list)  # of the 202s
    statuses: dict[int, int] = field(default_factory=dict)

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(len(lat) * q))] * 1000 if lat else float("nan")


async def wait_up(server: Server, within_s: float = 120) -> None:
    import aiohttp

    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise SystemExit(f"{server.name} server exited with {server.proc.returncode}")
            try:
                async with s.get(f"http://127.0.0.1:{server.port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{server.name} server did not become ready")


async def drained(server: Server, within_s: float = 120) -> None:
    deadline = time.monotonic() + within_s
    while spool_pending(server.data) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls files
        await asyncio.sleep(0.02)


async def closed_loop(server: Server, bodies: list[bytes], concurrency: int) -> Load:
    """`concurrency` clients, each posting its next body when the last one was answered."""
    import aiohttp

    url = f"http://127.0.0.1:{server.port}{server.path}"
    out = Load()
    queue = list(reversed(bodies))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as s:

        async def client() -> None:
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                async with s.post(url, data=body, headers=HEADERS) as r:
                    await r.read()
                    if r.status != 202:
                        raise SystemExit(f"{server.name}: {r.status} {await r.text()}")
                out.latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        out.elapsed_s = time.perf_counter() - t0
        await drained(server)
        out.shipped_s = time.perf_counter() - t0
    return out


async def open_loop(
    server: Server, bodies: list[bytes], rate_per_s: float, seconds: float, on_tick: object = None
) -> Load:
    """Requests sent on a fixed schedule whatever the answers (an open loop: a slow server
    does not slow the senders down). Latency counts from the scheduled send time."""
    import aiohttp

    url = f"http://127.0.0.1:{server.port}{server.path}"
    out = Load()
    n = max(1, int(rate_per_s * seconds))
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as s:

        async def one(i: int, due: float) -> None:
            try:
                async with s.post(url, data=bodies[i % len(bodies)], headers=HEADERS) as r:
                    await r.read()
                    status = r.status
            except aiohttp.ClientError:
                status = 0
            out.statuses[status] = out.statuses.get(status, 0) + 1
            if status == 202:
                out.latencies.append(time.perf_counter() - due)

        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            due = t0 + i / rate_per_s
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if callable(on_tick):
                on_tick()
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        out.elapsed_s = time.perf_counter() - t0
        await drained(server)
        out.shipped_s = time.perf_counter() - t0
    return out


# ---- the run


@dataclass
class Figure:
    records_s: float
    cpu_s: float
    load: Load
    loadavg: str


def throughput(
    server: Server, bodies: list[bytes], per_body: int, concurrency: int, warm: int
) -> Figure:
    """Warm-up (fills the UA cache and the floor's rows, as steady traffic would), then the
    closed loop; records/s up to an empty spool."""
    asyncio.run(wait_up(server))
    asyncio.run(closed_loop(server, bodies[:warm], concurrency))
    loadavg = load_average()
    pids = server.pids()
    cpu0 = cpu_seconds(pids)
    run = asyncio.run(closed_loop(server, bodies, concurrency))
    cpu = cpu_seconds(pids) - cpu0
    return Figure(len(bodies) * per_body / run.shipped_s, cpu, run, loadavg)


def overload(
    server: Server, bodies: list[bytes], rate: float, seconds: float
) -> tuple[Load, int, int]:
    """Open loop at `rate`; the largest RSS of any one server process, sampled every 50 ms as
    it runs (VmRSS: VmHWM would also count the start), and its anonymous part (RssAnon: what
    the process itself allocated; the rest is mostly chDB's ~350 MiB library, file-backed and
    shared by the processes that map it)."""
    peak = peak_anon = 0
    pids = server.pids()
    last = 0.0

    def sample() -> None:
        nonlocal peak, peak_anon, last
        now = time.monotonic()
        if now - last >= 0.05:
            last = now
            peak = max([peak, *(rss_bytes(p) for p in pids)])
            peak_anon = max([peak_anon, *(rss_bytes(p, "RssAnon:") for p in pids)])

    run = asyncio.run(open_loop(server, bodies, rate, seconds, sample))
    return run, peak, peak_anon


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--serve-floor", help=argparse.SUPPRESS)
    p.add_argument(
        "--geoip",
        default=geolite2_city(),
        help="a City .mmdb for the GeoIP stage (default: GeoLite2-City of the maxminddb-geolite2 "
        "package, a dev dependency); 'none': no GeoIP",
    )
    p.add_argument("--batches", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--phase-s", type=float, default=8.0, help="seconds of each open-loop phase")
    p.add_argument("--results", default=str(REPO / "bench" / "RESULTS.md"))
    args = p.parse_args()
    if args.geoip == "none":
        args.geoip = None
    if args.serve_floor:
        serve_floor(Path(args.serve_floor))
        return

    began = datetime.now(UTC)
    t_start = time.monotonic()
    start_load = load_average()
    ncores = len(os.sched_getaffinity(0))
    pin = shutil.which("taskset") is not None and ncores >= 2
    if pin:
        os.sched_setaffinity(0, {1})  # the load generator: core 1; single-worker servers: core 0
    records = corpus_records()
    for r in records:
        r["time"] = int(r["time"])  # type: ignore[call-overload]
    n = args.batch_size
    bodies = [
        gzip.compress(orjson.dumps([records[(i * n + j) % len(records)] for j in range(n)]))
        for i in range(args.batches)
    ]
    warm = max(1, len(bodies) // 4)
    tmp = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    codes: dict[str, int] = {}
    try:
        # 1-3: one worker
        server = launch("full", 1, "0" if pin else None, args.geoip, tmp)
        try:
            full = throughput(server, bodies, n, args.concurrency, warm)
            print(f"full, 1 worker: {full.records_s:,.0f} records/s", flush=True)
            req_rate = full.records_s / n
            half = asyncio.run(open_loop(server, bodies, req_rate / 2, args.phase_s))
            half_load = load_average()
            print(f"half load: p50 {half.pct(0.5):.1f} ms, p99 {half.pct(0.99):.1f} ms", flush=True)
            idle_rss = max(rss_bytes(p) for p in server.pids())
            over, peak, peak_anon = overload(server, bodies, req_rate * 2, args.phase_s)
            over_load = load_average()
            print(f"2x overload: {over.statuses}, peak RSS {peak / 2**20:.0f} MiB", flush=True)
        finally:
            codes["full-1"] = server.stop()
        # 4: the floor
        server = launch("floor", 1, "0" if pin else None, args.geoip, tmp)
        try:
            floor = throughput(server, bodies, n, args.concurrency, warm)
            print(f"floor: {floor.records_s:,.0f} records/s", flush=True)
        finally:
            codes["floor"] = server.stop()
        # 5: two workers on both cores
        server = launch("full", 2, "0,1" if pin else None, args.geoip, tmp)
        if pin:
            os.sched_setaffinity(0, {0, 1})
        try:
            two = throughput(server, bodies, n, args.concurrency, warm)
            two_rss = sorted(rss_bytes(p) for p in server.pids())[::-1]
            print(f"full, 2 workers: {two.records_s:,.0f} records/s", flush=True)
        finally:
            codes["full-2"] = server.stop()
        # 6: one worker, the engine in another process: a ClickHouse server (the test server
        # over chDB, on the load generator's core): what the collector itself costs
        if pin:
            os.sched_setaffinity(0, {1})
        from chserver import running_chserver

        with running_chserver(
            tmp / "chserver", wrapper=("taskset", "-c", "1") if pin else ()
        ) as ch:
            storage = f'engine = "clickhouse"\nurl = "{ch.url}"\n'
            server = launch("full", 1, "0" if pin else None, args.geoip, tmp, storage)
            try:
                remote = throughput(server, bodies, n, args.concurrency, warm)
                print(f"full, server engine: {len(bodies) * n / remote.cpu_s:,.0f} records "
                      "per collector core-second", flush=True)  # fmt: skip
            finally:
                codes["full-1-server"] = server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    total_s = time.monotonic() - t_start
    records = len(bodies) * n
    ratio = full.records_s / floor.records_s
    per_core = records / full.cpu_s
    floor_per_core = records / floor.cpu_s
    two_per_core = records / two.cpu_s
    remote_per_core = records / remote.cpu_s
    scaling = two.records_s / full.records_s
    mib = 2**20
    cpu = platform.processor() or platform.machine()
    command = " ".join(["bench/ingest_bench.py", *sys.argv[1:]])
    statuses = dict(sorted(over.statuses.items()))
    by_process = ", ".join(f"{r / mib:.0f}" for r in two_rss)

    def mark(ok: bool) -> str:
        return "yes" if ok else "**no**"

    def share(f: Figure) -> str:
        return f"{f.cpu_s / f.load.shipped_s:.0%}"

    pinning = (
        "one-worker servers on core 0, the load generator on core 1; two workers on cores 0-1, "
        "sharing them with the load generator"
        if pin
        else "none (taskset missing or a single usable core)"
    )
    lines = [
        "# Ingest benchmark",
        "",
        f"- Date: {began:%Y-%m-%d %H:%M} UTC; whole run {total_s:.0f} s",
        f"- Machine: nproc {os.cpu_count()} (usable {ncores}), {cpu}, Python "
        f"{platform.python_version()}; load average at start: {start_load}",
        f"- Command: `make bench` (`.venv/bin/python {command}`)",
        f"- Bodies: {len(bodies)} gzip'd JSON batches x {n} access-log records of the corpus; "
        f"closed loop at {args.concurrency} requests in flight (a tenant may have 16 per "
        f"process); open-loop phases {args.phase_s:g} s",
        f"- Pinning: {pinning}",
        "- full: `collector serve` (decode, validate, UA parse, GeoIP "
        + (f"on ({Path(args.geoip).name}, answers cached)" if args.geoip else "off")
        + ", anonymize, spool append + group fsync, 202; the shipper inserts into chDB with its "
        "rollup views). floor: the same server and spool, one route doing aiohttp gunzip + "
        "orjson.loads + re-serializing the same number of anonymized rows + the same spool "
        "append/fsync + the same shipping insert. records/s runs until every acknowledged row "
        "is inserted (spool empty); server CPU counts every thread (chDB's inserts and merges "
        "too) of every server process.",
        "",
        "| run | records/s | floor | ratio | server CPU | records per core-second | "
        "load avg (1/5/15 min) |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| full vs floor, 1 worker (core 0) | {full.records_s:,.0f} | {floor.records_s:,.0f} | "
        f"{ratio:.2f} | {share(full)} / {share(floor)} | {per_core:,.0f} / {floor_per_core:,.0f} "
        f"| {full.loadavg} / {floor.loadavg} |",
        f"| full, 2 workers (cores 0-1, shared with the load generator) | {two.records_s:,.0f} | "
        f"{floor.records_s:,.0f} | {two.records_s / floor.records_s:.2f} | {share(two)} | "
        f"{two_per_core:,.0f} | {two.loadavg} |",
        f"| full, 1 worker (core 0), server engine: the ClickHouse test server over chDB in its "
        f"own process on core 1 (its CPU not counted) | {remote.records_s:,.0f} | | | "
        f"{share(remote)} | {remote_per_core:,.0f} | {remote.loadavg} |",
        "",
        "| measure | value | target | met | load avg |",
        "|---|---|---|---|---|",
        f"| records per core-second, full, 1 worker | {per_core:,.0f} | >= {TARGET_PER_CORE:,} | "
        f"{mark(per_core >= TARGET_PER_CORE)} | {full.loadavg} |",
        f"| records per collector core-second, server engine (the engine's CPU elsewhere, "
        f"as in production) | {remote_per_core:,.0f} | >= {TARGET_PER_CORE:,} | "
        f"{mark(remote_per_core >= TARGET_PER_CORE)} | {remote.loadavg} |",
        f"| full / floor | {ratio:.2f} | >= 0.5 | {mark(ratio >= 0.5)} | {full.loadavg} |",
        f"| ack latency at half load ({req_rate / 2:.1f} req/s, 1 worker) | "
        f"p50 {half.pct(0.5):.1f} ms, p99 {half.pct(0.99):.1f} ms | p99 < 50 ms | "
        f"{mark(half.pct(0.99) < 50)} | {half_load} |",
        f"| peak RSS per process under 2x overload ({req_rate * 2:.1f} req/s, 1 worker) | "
        f"VmRSS {peak / mib:.0f} MiB (before it {idle_rss / mib:.0f}), of which anonymous "
        f"{peak_anon / mib:.0f} MiB; answers {statuses} | < 300 MiB | VmRSS "
        f"{mark(peak < 300 * mib)}, anonymous {mark(peak_anon < 300 * mib)} | {over_load} |",
        f"| 2 workers / 1 worker | {scaling:.2f}x records/s, {two_per_core / per_core:.2f}x "
        f"records per core-second (RSS after it by process: {by_process} MiB) | near 2x where "
        f"cores allow | {mark(scaling >= 1.6)} | {two.loadavg} |",
        f"| SIGTERM exit codes | {codes} | 0 | {mark(all(c == 0 for c in codes.values()))} | |",
        "",
    ]
    Path(args.results).write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"full / floor = {ratio:.2f}  (target: >= 0.5, and >= 50,000 records per core-second)")


if __name__ == "__main__":
    main()
