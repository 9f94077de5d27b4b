"""The real service as a process: `collector init`, `serve`, SIGTERM with a request in flight,
then `collector sql` on the same data dir. This is what `make run` does."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def collector(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "collector exited early"
            try:
                async with s.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("collector did not become healthy")


async def test_init_serve_sigterm_sql(tmp_path: Path) -> None:
    init = collector(
        "init",
        "--config",
        "collector.toml",
        "--example",
        str(REPO / "collector.example.toml"),
        cwd=tmp_path,
    )
    assert init.returncode == 0, init.stderr
    key = next(line.strip() for line in init.stdout.splitlines() if line.strip().startswith("tck_"))
    config = (tmp_path / "collector.toml").read_text()
    assert key not in config  # only the hash is kept
    port = free_port()
    config = config.replace("port = 8080", f"port = {port}").replace(
        "segment_age_ms = 500", "segment_age_ms = 60000"
    )
    (tmp_path / "collector.toml").write_text(
        config.replace('file = "policy.toml"', f'file = "{REPO / "policy.toml"}"')
    )
    again = collector("init", "--config", "collector.toml", cwd=tmp_path)
    assert again.returncode == 0 and "using existing" in again.stderr  # never overwritten

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "serve", "--config", "collector.toml",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, proc)
        records = [{"ip": "203.0.113.5", "user_id": "carol", "path": f"/p{i}"} for i in range(50)]
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/v1/logs", data=orjson.dumps(records), headers=headers) as r:
                assert r.status == 202  # in the spool, not inserted (shipped after 60 s)
                assert (await r.json())["accepted"] == 50
            async with s.get(url + "/metrics") as m:
                assert 'collector_spool_bytes{table="access_log"} 0.0' not in await m.text()
            proc.send_signal(signal.SIGTERM)  # ships what waits, then stops
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, output.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
    served = output.decode()
    assert "collector stopped" in served
    assert "203.0.113.5" not in served and "carol" not in served and key not in served

    out = collector(
        "sql", "--config", "collector.toml",
        "SELECT count() AS n, uniqExact(user_pseudonym) AS u FROM access_log", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == {"n": 50, "u": 1}
    keys = list((tmp_path / "data" / "keys" / "dev").iterdir())
    assert len(keys) == 1 and oct(os.stat(keys[0]).st_mode & 0o777) == "0o600"


def test_sql_reports_a_bad_query_clearly(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[storage]\npath = "d"\n')
    out = collector("sql", "--config", "c.toml", "SELECT nope FROM access_log", cwd=tmp_path)
    assert out.returncode == 2 and "UNKNOWN_IDENTIFIER" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_config_stops_with_the_key_named(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[server]\nprot = 1\n")
    out = collector("serve", "--config", "c.toml", cwd=tmp_path)
    assert out.returncode == 2 and "server.prot: unknown key" in out.stderr


async def test_tls(tmp_path: Path) -> None:
    """With tls_cert/tls_key the collector speaks HTTPS only; the client verifies the chain."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    port = free_port()
    (tmp_path / "c.toml").write_text(
        f'[server]\nport = {port}\ntls_cert = "server.pem"\ntls_key = "server.pem"\n'
        '[storage]\npath = "data"\n[[tenants]]\nid = "t"\n'
        f'api_key_sha256 = ["{__import__("hashlib").sha256(b"k").hexdigest()}"]\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "serve", "--config", "c.toml",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as s:
            while True:
                assert proc.returncode is None and time.monotonic() < deadline
                try:
                    async with s.get(f"https://127.0.0.1:{port}/healthz", ssl=client_ctx) as r:
                        assert r.status == 200
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)
            async with s.post(
                f"https://127.0.0.1:{port}/v1/events", json={"event": "e"},
                headers={"Authorization": "Bearer k"}, ssl=client_ctx,
            ) as r:  # fmt: skip
                assert r.status == 202
            with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    await r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0


def test_plain_http_off_loopback_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[server]\nhost = "0.0.0.0"\n[storage]\npath = "d"\n')
    out = collector("serve", "--config", "c.toml", cwd=tmp_path)
    assert out.returncode == 2 and "unencrypted" in out.stderr
    (tmp_path / "c.toml").write_text('[server]\ntls_cert = "x.pem"\n')
    out = collector("serve", "--config", "c.toml", cwd=tmp_path)
    assert out.returncode == 2 and "set both, or neither" in out.stderr


async def test_a_malformed_request_logs_no_client_address(tmp_path: Path) -> None:
    """aiohttp logs "Error handling request from <address>" on a broken request; the served
    process logs the rejection by status and error class only (and its formatter scrubs
    addresses anyway)."""
    port = free_port()
    (tmp_path / "c.toml").write_text(f'[server]\nport = {port}\n[storage]\npath = "data"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "serve", "--config", "c.toml",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", proc)
        for request in (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
            b"\x16\x03\x01garbage\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            await reader.read(1000)
            writer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = output.decode()
    assert "rejected a request before routing: 400 (BadHttpMessage)" in text  # logged ...
    assert "127.0.0.1" not in text.replace(
        f"http://127.0.0.1:{port}", ""
    )  # ... without the address


def test_init_elsewhere_copies_the_policy_and_serve_refuses_a_missing_one(tmp_path: Path) -> None:
    example = str(REPO / "collector.example.toml")
    init = collector("init", "--config", "other/x.toml", "--example", example, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    copied = tmp_path / "other" / "policy.toml"
    assert copied.read_text() == (REPO / "policy.toml").read_text()
    copied.unlink()
    serve = collector("serve", "--config", "other/x.toml", cwd=tmp_path)
    # refused before it says it listens: no "listening" line followed by an exit
    assert serve.returncode == 2 and "listening" not in serve.stdout
    assert "[policy] file" in serve.stderr and "does not exist" in serve.stderr


def test_init_from_any_folder_finds_the_example_and_a_missing_one_is_named(tmp_path: Path) -> None:
    """No `--example` outside the checkout: the checkout's example is used (it was a traceback:
    `collector.example.toml` was looked for in the current folder only)."""
    init = collector("init", "--config", "c.toml", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert "tck_" in init.stdout and (tmp_path / "policy.toml").is_file()
    missing = collector("init", "--config", "d.toml", "--example", "nope.toml", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "cannot read the example config nope.toml" in missing.stderr
