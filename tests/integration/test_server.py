"""collector/server.py in-process, on a real socket: what the red-team suite cannot reach
through `running_service` (a TLS listener)."""

import asyncio
import ssl
import time
from pathlib import Path

import aiohttp
import trustme
from aiohttp import web

from collector.config import ServerConfig
from collector.server import CollectorRunner, ListeningSite
from tests.redteam.service import free_port


async def test_a_stalled_tls_handshake_is_closed_at_the_header_deadline(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(tmp_path / "s.pem")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "s.pem")
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = CollectorRunner(app, ServerConfig(header_read_timeout_s=1))
    await runner.setup()
    port = free_port()
    await ListeningSite(runner, "127.0.0.1", port, server_ctx, 1).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # no ClientHello
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(1), 5) == b""
        assert time.monotonic() - started < 3
        writer.close()
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"https://127.0.0.1:{port}/healthz", ssl=client_ctx) as r,
        ):
            assert r.status == 200  # a real handshake is served
    finally:
        await runner.cleanup()
