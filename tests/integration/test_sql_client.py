"""`collector sql`'s client: it finds the running service where the config says it listens,
over HTTPS when the service has a certificate (trusting exactly that one), and tells "nothing
listens" (fall back to the engine) from a refusal (exit 2)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from collector.app import create_app
from collector.cli import tls_context
from collector.config import Config, ServerConfig
from collector.errors import CollectorError
from collector.sql_client import NoService, ask_service, service_url
from tests.conftest import ADMIN_KEY, ANALYST_KEY
from tests.redteam.service import free_port


@pytest.mark.parametrize(
    ("host", "tls", "url"),
    [
        ("0.0.0.0", False, "http://127.0.0.1:8080"),
        ("::", False, "http://[::1]:8080"),
        ("127.0.0.1", True, "https://127.0.0.1:8080"),
        ("10.1.2.3", False, "http://10.1.2.3:8080"),
    ],
)
def test_the_service_is_asked_where_it_listens(host: str, tls: bool, url: str) -> None:
    cert = Path("c.pem") if tls else None
    server = ServerConfig(host=host, tls_cert=cert, tls_key=cert)
    assert service_url(Config(server=server)) == url


async def test_over_tls_the_configured_certificate_is_the_one_trusted(
    tmp_path: Path, config: Config
) -> None:
    ca = trustme.CA()
    ca.issue_cert("collector.example").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "server.pem")
    )
    pem = tmp_path / "server.pem"
    port = free_port()
    config = replace(config, server=ServerConfig(port=port, tls_cert=pem, tls_key=pem))
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls_context(config.server))
    await site.start()
    try:
        rows = await asyncio.to_thread(ask_service, config, ADMIN_KEY, "SELECT 1 AS one", 10)
        assert rows == [{"one": 1}]
        with pytest.raises(CollectorError, match="forbidden"):
            await asyncio.to_thread(ask_service, config, ANALYST_KEY, "SELECT 1", 10)
        with pytest.raises(CollectorError, match="give an admin key in COLLECTOR_API_KEY"):
            await asyncio.to_thread(ask_service, config, "", "SELECT 1", 10)
        other = tmp_path / "other.pem"
        trustme.CA().issue_cert("x").private_key_and_cert_chain_pem.write_to_path(str(other))
        impostor = replace(config, server=replace(config.server, tls_cert=other, tls_key=other))
        with pytest.raises(CollectorError, match="CERTIFICATE_VERIFY_FAILED"):
            await asyncio.to_thread(ask_service, impostor, ADMIN_KEY, "SELECT 1", 10)
    finally:
        await runner.cleanup()
    with pytest.raises(NoService):  # nothing listens any more: the caller opens the engine
        await asyncio.to_thread(ask_service, config, ADMIN_KEY, "SELECT 1", 10)
