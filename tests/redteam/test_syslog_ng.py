"""A real sender: syslog-ng (Debian's, with its `http()` destination) tails a file of combined log
lines and posts them in batches to the real collector, as an operator would configure it.

What each side sees:
- lines the collector cannot parse are answered inside a 202, which syslog-ng counts as written
  (its `dropped` stays 0): the rejections show in `GET /v1/outcomes`, in `/metrics` and in the
  service's log line, never in syslog-ng;
- a request refused whole (here a wrong Content-Type: 415) is counted by the collector as one
  `refused` request per batch, and syslog-ng, told `response-action(415 => drop)`, counts the
  batch's lines as dropped and logs the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import corpus_lines_today
from tests.redteam.service import ADMIN_KEY, INGEST_KEY, OTHER_KEY, Service, running_service

SYSLOG_NG = shutil.which("syslog-ng") or shutil.which("syslog-ng", path="/usr/sbin")
CTL = shutil.which("syslog-ng-ctl") or shutil.which("syslog-ng-ctl", path="/usr/sbin")
HTTP_MODULE = any(Path("/usr/lib/syslog-ng").glob("*/libhttp.so"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        SYSLOG_NG is None or CTL is None or not HTTP_MODULE,
        reason="syslog-ng with its http() module is not installed "
        "(apt-get install -y syslog-ng-core syslog-ng-mod-http)",
    ),
]
MARKER = "UNPARSEABLE-MARKER-7f3a"  # in the bad lines: it must not reach the service's log
REFUSING = "response-action(400 => drop, 408 => drop, 413 => drop, 415 => drop, 422 => drop)"


def config_version() -> str:
    """The `@version:` this syslog-ng reads without warnings (`Config version: 3.35`)."""
    assert SYSLOG_NG is not None
    out = subprocess.run([SYSLOG_NG, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"Config version: (\d+\.\d+)", out)
    return found.group(1) if found else "3.35"


def sng_config(source: Path, url: str, key: str, content_type: str) -> str:
    """The configuration README documents: one line per message, batches of 100 lines."""
    return f"""@version: {config_version()}
options {{ stats-level(1); time-reopen(1); }};
source s_access {{ file("{source}" flags(no-parse) follow-freq(0.2)); }};
destination d_collector {{
  http(url("{url}") method("POST")
       headers("Authorization: Bearer {key}", "Content-Type: {content_type}")
       body("${{MESSAGE}}") delimiter("\\n") batch-lines(100) batch-timeout(300)
       {REFUSING});
}};
log {{ source(s_access); destination(d_collector); }};
"""


async def http_stats(ctl: Path) -> dict[str, int]:
    """syslog-ng's own counters for its http() destination (`syslog-ng-ctl stats`)."""
    assert CTL is not None
    proc = await asyncio.create_subprocess_exec(
        CTL, "stats", "--control", str(ctl),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await proc.communicate()
    stats = {}
    for line in out.decode().splitlines():
        parts = line.split(";")
        if len(parts) == 6 and parts[0] == "dst.http" and parts[5].isdigit():
            stats[parts[4]] = int(parts[5])
    return stats


@contextlib.asynccontextmanager
async def syslog_ng(
    tmp_path: Path, lines: list[str], url: str, key: str, content_type: str = "text/plain"
) -> AsyncIterator[tuple[Path, Path]]:
    """syslog-ng in the foreground with a private config, persist file, pid file and control
    socket (a short path: a unix socket path is at most 107 bytes). Yields (control socket,
    its stderr: the internal log)."""
    assert SYSLOG_NG is not None
    source = tmp_path / "access.log"
    source.write_text("".join(line + "\n" for line in lines))
    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(sng_config(source, url, key, content_type))
    internal = tmp_path / "syslog-ng.stderr"
    with tempfile.TemporaryDirectory(prefix="sng", dir="/tmp") as short, internal.open("wb") as err:
        ctl = Path(short) / "ctl"
        proc = await asyncio.create_subprocess_exec(
            SYSLOG_NG, "-F", "-e", "-f", str(conf), "--persist-file", str(tmp_path / "persist"),
            "--pidfile", str(tmp_path / "syslog-ng.pid"), "--control", str(ctl),
            stdout=asyncio.subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        try:
            yield ctl, internal
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def until_sent(ctl: Path, n: int, within_s: float = 90) -> dict[str, int]:
    """syslog-ng's counters once all `n` lines were written or dropped."""
    stats: dict[str, int] = {}
    for _ in range(int(within_s / 0.25)):
        stats = await http_stats(ctl)
        if stats.get("written", 0) + stats.get("dropped", 0) >= n and not stats.get("queued"):
            return stats
        await asyncio.sleep(0.25)
    raise AssertionError(f"syslog-ng did not send {n} lines: {stats}")


async def outcomes(s: aiohttp.ClientSession, svc: Service, key: str) -> dict[tuple[str, str], int]:
    async with s.get(svc.url + "/v1/outcomes", headers=svc.headers(key)) as r:
        assert r.status == 200
        body: Any = await r.json()
    return {(row["outcome"], row["reason"]): row["count"] for row in body["rows"]}


async def stored(s: aiohttp.ClientSession, svc: Service, sql: str) -> list[dict[str, Any]]:
    async with s.post(
        svc.url + "/v1/admin/sql", json={"query": sql}, headers=svc.headers(ADMIN_KEY)
    ) as r:
        body: Any = await r.json()
        assert r.status == 200, body
    rows: list[dict[str, Any]] = body["rows"]
    return rows


async def test_good_lines_are_stored_and_rejected_lines_show_in_outcomes_not_in_syslog_ng(
    tmp_path: Path,
) -> None:
    good = corpus_lines_today()[:250]
    bad = [f"{MARKER} not an access log line {i}" for i in range(3)]
    lines = good[:10] + bad[:1] + good[10:120] + bad[1:2] + good[120:200] + bad[2:] + good[200:]
    (tmp_path / "svc").mkdir()
    async with (
        running_service(tmp_path / "svc") as svc,
        aiohttp.ClientSession() as s,
    ):
        url = svc.url + "/v1/logs?service=syslog-ng"
        async with syslog_ng(tmp_path, lines, url, INGEST_KEY) as (ctl, internal):
            stats = await until_sent(ctl, len(lines))
        # syslog-ng saw 202s only: every line "written", none dropped, nothing in its log
        assert (stats["written"], stats.get("dropped", 0)) == (len(lines), 0), stats
        assert "status_code" not in internal.read_text()

        assert await outcomes(s, svc, INGEST_KEY) == {
            ("accepted", ""): len(good),
            ("rejected", "unparseable_line"): len(bad),
        }
        # acknowledged = in the spool; the shipper inserts them within about a segment's age
        sql = "SELECT service, count() AS n FROM access_log GROUP BY service"
        deadline = time.monotonic() + 30
        while not (rows := await stored(s, svc, sql)) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls another process
            await asyncio.sleep(0.2)
        assert [(r["service"], int(r["n"])) for r in rows] == [("syslog-ng", len(good))]
        async with s.get(svc.url + "/metrics") as r:
            metrics = await r.text()
        assert (
            'collector_records_outcomes_total{kind="access_log",outcome="rejected",'
            'reason="unparseable_line"} 3.0' in metrics
        )
        said = re.findall(
            r"rejected (\d+) of (\d+) records on /v1/logs for tenant acme; "
            r"first: index \d+, field \S+, reason unparseable_line",
            svc.log(),
        )
        assert sum(int(n) for n, _ in said) == len(bad), svc.log()
        assert MARKER not in svc.log()


async def test_a_batch_refused_whole_is_dropped_by_syslog_ng_and_counted_as_refused(
    tmp_path: Path,
) -> None:
    lines = corpus_lines_today()[:250]
    (tmp_path / "svc").mkdir()
    async with (
        running_service(tmp_path / "svc") as svc,
        aiohttp.ClientSession() as s,
    ):
        url = svc.url + "/v1/logs"
        async with syslog_ng(tmp_path, lines, url, OTHER_KEY, "application/xml") as (ctl, internal):
            stats = await until_sent(ctl, len(lines))
        assert (stats.get("written", 0), stats["dropped"]) == (0, len(lines)), stats
        said = re.findall(
            r"handled by response_action; action='drop'.*status_code='415'", internal.read_text()
        )
        assert said, internal.read_text()
        # one `refused` per batch syslog-ng sent, for the sender's tenant only
        assert await outcomes(s, svc, OTHER_KEY) == {
            ("refused", "unsupported_media_type"): len(said)
        }
        assert await outcomes(s, svc, INGEST_KEY) == {}
        async with s.get(svc.url + "/metrics", headers=svc.headers(ADMIN_KEY)) as r:
            own = await r.text()
        assert 'tenant="globex"' not in own  # acme's admin sees acme only
        async with s.get(svc.url + "/metrics") as r:
            public = await r.text()
        assert (
            'collector_records_outcomes_total{kind="access_log",outcome="refused",'
            f'reason="unsupported_media_type"}} {float(len(said))}' in public
        )
        assert "globex" not in public
