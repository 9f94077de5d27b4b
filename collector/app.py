"""The app factory. Tests build the app through the same `create_app` the service runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from anonymizer import Policy, PolicyError, parse_policy
from anonymizer.policy import default_policy
from collector import handlers
from collector.appkeys import AUTH, BATCHERS, CONFIG, IDEMPOTENCY, METRICS, PIPELINE, SINK
from collector.auth import Authenticator
from collector.batcher import Batchers
from collector.config import Config
from collector.enrich import Enricher, GeoIp, UserAgentParser
from collector.errors import ConfigError
from collector.idempotency import IdempotencyStore
from collector.keys import KeyStore
from collector.kinds import KINDS
from collector.metrics import Metrics
from collector.middlewares import auth_middleware, errors_middleware
from collector.pipeline import Pipeline
from collector.sink_chdb import ChdbSink

log = logging.getLogger(__name__)


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return default_policy()
    try:
        return parse_policy(path.read_text())
    except OSError as e:
        raise ConfigError(f"policy.file: cannot read {path}: {e.strerror}") from e
    except PolicyError as e:
        raise ConfigError(f"policy file {path}: {e}") from e


def create_app(config: Config) -> web.Application:
    app = web.Application(
        client_max_size=config.server.max_decompressed_bytes,
        middlewares=[errors_middleware, auth_middleware],
    )
    app[CONFIG] = config
    app[AUTH] = Authenticator(config.tenants)
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_pipeline)
    app.cleanup_ctx.append(_storage)
    setup_routes(app)
    return app


def setup_routes(app: web.Application) -> None:
    for kind in KINDS.values():
        app.router.add_post(kind.route, handlers.ingest_handler(kind))
    app.router.add_post("/otlp/v1/logs", handlers.ingest_otlp)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get("/openapi.json", handlers.openapi)


async def _pipeline(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    geoip = GeoIp(config.enrich.geoip_database)
    app[PIPELINE] = Pipeline(
        load_policy(config.policy_file),
        KeyStore(config.storage.keys_path),
        Enricher(UserAgentParser(config.enrich.user_agent_cache_size), geoip),
    )
    yield
    geoip.close()


async def _storage(app: web.Application) -> AsyncIterator[None]:
    """Open the engine and migrate on its own thread; on the way out flush, then close."""
    config = app[CONFIG]
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink")
    loop = asyncio.get_running_loop()
    storage = config.storage
    sink = await loop.run_in_executor(
        executor, ChdbSink, storage.chdb_path, storage.database, storage.tmp_path
    )
    try:
        applied = await loop.run_in_executor(executor, sink.migrate)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        app[SINK] = sink

        async def insert(table: str, rows: bytes, token: str) -> None:
            await loop.run_in_executor(executor, sink.insert, table, rows, token)

        batchers = Batchers([k.table for k in KINDS.values()], insert, config.batch)
        app[BATCHERS] = batchers
        batchers.start()
        app[IDEMPOTENCY] = IdempotencyStore(storage.path / "idempotency.jsonl")
        yield
        await batchers.close()
        app[IDEMPOTENCY].close()
    finally:
        await loop.run_in_executor(executor, sink.close)
        executor.shutdown(wait=True)
