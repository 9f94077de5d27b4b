"""A real sender: nginx, with its default `main` log format, serves a few pages on loopback;
its access log, as nginx wrote it, is posted to the real collector as text/plain: every line is
accepted (the line that came through proxies carries its client in the chain: see
tests/collector/test_formats.py for where the client is taken from)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.redteam.service import free_port, running_service

pytestmark = pytest.mark.slow

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
# nginx's own default (nginx.conf as shipped): combined + "$http_x_forwarded_for"
MAIN = (
    "log_format  main  '$remote_addr - $remote_user [$time_local] \"$request\" '\n"
    "                  '$status $body_bytes_sent \"$http_referer\" '\n"
    '                  \'"$http_user_agent" "$http_x_forwarded_for"\';'
)


def nginx_config(root: Path, port: int) -> str:
    temp = " ".join(
        f"{name}_temp_path {root / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"};
events {{ worker_connections 64; }}
http {{
    {MAIN}
    access_log {root / "access.log"} main;
    {temp}
    server {{
        listen 127.0.0.1:{port};
        root {root / "www"};
    }}
}}
"""


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install -y nginx-light)")
async def test_nginx_default_main_log_is_accepted_whole(tmp_path: Path) -> None:
    assert NGINX is not None
    root = tmp_path / "nginx"
    (root / "www").mkdir(parents=True)
    (root / "www" / "index.html").write_text("<h1>hello</h1>")
    (root / "www" / "about.html").write_text("<p>about</p>")
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(nginx_config(root, port))
    proc = await asyncio.create_subprocess_exec(
        NGINX, "-c", str(conf), "-p", str(root), "-g", "daemon off;",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as s:
            for _ in range(50):  # until nginx listens
                try:
                    async with s.get(base + "/") as r:
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            pages = [
                ("/", {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0"}),
                ("/about.html?utm_source=news", {"Referer": "https://www.example.org/a?q=1"}),
                ("/missing", {"User-Agent": 'quote " inside'}),
                ("/", {"X-Forwarded-For": "203.0.113.50, 10.0.0.2"}),  # through two proxies
            ]
            for path, headers in pages:
                async with s.get(base + path, headers=headers) as r:
                    await r.read()
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: the log is flushed
        await asyncio.wait_for(proc.wait(), 30)
    log = (root / "access.log").read_text()
    lines = log.splitlines()
    assert len(lines) == len(pages) + 1  # the readiness probe too
    assert all(line.endswith('"') for line in lines)  # the `main` format, as written

    (tmp_path / "svc").mkdir()
    async with running_service(tmp_path / "svc") as svc, aiohttp.ClientSession() as s:
        headers = svc.headers(**{"Content-Type": "text/plain"})
        async with s.post(svc.url + "/v1/logs?service=nginx", data=log, headers=headers) as r:
            body = await r.json()
    assert r.status == 202, body
    assert (body["accepted"], body["rejected"]) == (len(lines), 0), body


def adversarial_lines(n: int = 60_000) -> list[str]:
    """Lines shaped to make a backtracking pattern quadratic in each text format's parser:
    long runs of the characters that end or escape its fields."""
    clf = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "'
    shapes = [
        "a " * (n // 2),
        '" ' * (n // 2),
        clf + "\\" * n,
        clf + 'GET / HTTP/1.1" 200 1 "-" "ua"' + ' "a' * (n // 3),
        "http 2018-07-02T22:23:00.186641Z app/x " + "1:2 " * (n // 4),
        "2015-05-13T23:39:43.945958Z x " + "a:1 " * (n // 4),
        '[2016-04-15T20:17:00.310Z] "' + '\\"' * (n // 2),
        "1 - - [" * (n // 7),
        "h" + ":" * n + " 1 - - [",
        "2019-12-04\t" + "a\t" * (n // 2),
        "{" + '"a":[' * 500 + "1" + "]" * 500 + "}",
        "v v v [" + "x" * n,
        clf + 'GET / HTTP/1.1" 200 1 "-" "' + "\\x22" * (n // 4) + '"',
        "h]: " + "1:" * (n // 2),
        "h]: 1.2.3.4:1 [06/Feb/2009:12:14:14.655] a b 1/2/3/4/5 200 1 - - - - -" + " {" * n,
        "1286536309.586" + " " * n + "1",
        "a" * 64 + " b [06/Feb/2019:00:00:38 +0000] " + "x " * (n // 2),
    ]
    return [shape[:n] for shape in shapes]


async def test_adversarial_lines_cost_linear_time(tmp_path: Path) -> None:
    """20 copies of each adversarial shape (~60 KB a line, ~15 MB in all, gzip on the wire):
    every line answered per record, in far less time than one quadratic line would take."""
    import gzip
    import time

    lines = adversarial_lines() * 20
    body = gzip.compress(("\n".join(lines) + "\n").encode())
    async with running_service(tmp_path) as svc, aiohttp.ClientSession() as s:
        headers = svc.headers(**{"Content-Type": "text/plain", "Content-Encoding": "gzip"})
        started = time.monotonic()
        async with s.post(svc.url + "/v1/logs", data=body, headers=headers) as r:
            reply = await r.json()
        elapsed = time.monotonic() - started
    assert r.status == 202, reply
    assert reply["accepted"] + reply["rejected"] == len(lines)
    print(f"{len(lines)} adversarial lines: {elapsed:.1f} s")
    assert elapsed < 60, elapsed  # ~3 s here; one quadratic 60 KB line alone costs minutes
