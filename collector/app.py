"""The app factory. Tests build the app through the same `create_app` the service runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from collector import (
    analyst_reports,
    dashboard,
    handlers,
    policy_api,
    privacy_view,
    reports,
    rollups,
    subjects,
)
from collector.appkeys import (
    AUTH,
    BATCHERS,
    CONFIG,
    DB,
    IDEMPOTENCY,
    INFLIGHT,
    METRICS,
    PIPELINE,
    RATES,
    SINK,
    TENANT,
)
from collector.auth import Authenticator
from collector.batcher import Batchers
from collector.config import Config
from collector.enrich import Enricher, GeoIp, UserAgentParser
from collector.errors import ConfigError
from collector.idempotency import IdempotencyStore
from collector.keys import KeyStore
from collector.kinds import KINDS
from collector.limits import InFlight, RateLimiter
from collector.metrics import Metrics, StateCollector
from collector.middlewares import PUBLIC_PATHS, Handler, auth_middleware, errors_middleware
from collector.pipeline import Pipeline
from collector.policies import PolicyChange, PolicyRefused, PolicyStore
from collector.salts import SWEEP_INTERVAL_S, SaltStore, sweep_forever, wall_clock_ms
from collector.sink import AsyncSink
from collector.storage import open_sink

log = logging.getLogger(__name__)
SALT_SWEEP_SECONDS = SWEEP_INTERVAL_S


def create_app(config: Config) -> web.Application:
    app = web.Application(
        client_max_size=config.server.max_decompressed_bytes,
        middlewares=[dashboard.security_headers, errors_middleware, auth_middleware],
    )
    app[CONFIG] = config
    app[AUTH] = Authenticator(config.tenants)
    app[METRICS] = Metrics()
    app[INFLIGHT] = InFlight(config.server.max_inflight_requests, config.server.inflight_per_tenant)
    app[RATES] = RateLimiter(config.tenants)
    app.cleanup_ctx.append(_pipeline)
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_policy_reload_and_salts)
    app.on_shutdown.append(_hurry_batches)
    setup_routes(app)
    return app


async def _hurry_batches(app: web.Application) -> None:
    """On SIGTERM aiohttp stops accepting, runs this, then waits for in-flight requests: their
    batches flush at once instead of after `max_delay_ms`."""
    app[BATCHERS].hurry()


def _scoped(handler: Handler, scopes: frozenset[str]) -> Handler:
    """Every non-public route names the key scopes that may call it (admin may call all)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        request[TENANT].require(scopes)
        return await handler(request)

    guarded.__name__ = getattr(handler, "__name__", "handler")
    return guarded


def _bounded(handler: Handler) -> Handler:
    """Ingest handlers run in one of a bounded number of slots, a share of them per tenant (503
    beyond)."""

    async def bounded(request: web.Request) -> web.StreamResponse:
        with request.app[INFLIGHT].slot(request[TENANT].id):
            return await handler(request)

    bounded.__name__ = getattr(handler, "__name__", "handler")
    return bounded


def setup_routes(app: web.Application) -> None:
    ingest = frozenset({"ingest"})
    for kind in KINDS.values():
        app.router.add_post(kind.route, _scoped(_bounded(handlers.ingest_handler(kind)), ingest))
    app.router.add_post("/otlp/v1/logs", _scoped(_bounded(handlers.ingest_otlp), ingest))
    app.router.add_get(
        "/v1/policy", _scoped(policy_api.get_policy, frozenset({"analyst", "privacy"}))
    )
    app.router.add_put("/v1/policy", _scoped(policy_api.put_policy, frozenset({"privacy"})))
    app.router.add_get("/v1/policy/audit", _scoped(policy_api.get_audit, frozenset({"privacy"})))
    readers = frozenset({"analyst", "privacy"})
    for path, report in analyst_reports.ROUTES.items():  # before /v1/reports/{name}
        app.router.add_get(path, _scoped(report, readers))
    app.router.add_get(
        "/v1/reports/{name}", _scoped(reports.get_report, frozenset({"analyst", "privacy"}))
    )
    privacy = frozenset({"privacy"})
    app.router.add_post("/v1/subjects/export", _scoped(subjects.export_subject, privacy))
    app.router.add_post("/v1/subjects/delete", _scoped(subjects.delete_subject, privacy))
    app.router.add_get("/v1/privacy/overview", _scoped(privacy_view.privacy_overview, privacy))
    dashboard.setup(app)
    public = {
        "/healthz": handlers.healthz,
        "/readyz": handlers.readyz,
        "/metrics": handlers.metrics,
        "/openapi.json": handlers.openapi,
    }
    assert set(public) == PUBLIC_PATHS
    for path, handler in public.items():
        app.router.add_get(path, handler)


async def _pipeline(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    geoip = GeoIp(config.enrich.geoip_database)
    try:
        policies = PolicyStore(
            config.policy_file, config.tenant_policy_dir, [t.id for t in config.tenants]
        )
    except PolicyRefused as e:
        raise ConfigError(f"policy refused: {e}") from e
    app[PIPELINE] = Pipeline(
        policies,
        KeyStore(config.storage.keys_path),
        SaltStore(config.storage.path / "salts"),
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
    sink = await loop.run_in_executor(executor, open_sink, storage)
    try:
        applied = await loop.run_in_executor(executor, rollups.migrate, sink)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        app[SINK] = sink
        db = app[DB] = AsyncSink(sink, executor)
        tables = [k.table for k in KINDS.values()]
        batchers = Batchers(tables, db.insert, config.batch, probe=db.probe)
        app[BATCHERS] = batchers
        batchers.start()
        app[IDEMPOTENCY] = IdempotencyStore(
            storage.path / "idempotency.jsonl",
            config.idempotency.max_keys_per_tenant,
            config.idempotency.max_bytes_per_tenant,
            config.idempotency.compact_min_bytes,
        )
        state = StateCollector(batchers, app[PIPELINE].salts, app[IDEMPOTENCY], wall_clock_ms)
        app[METRICS].registry.register(state)
        yield
        app[METRICS].registry.unregister(state)
        await batchers.close(timeout_s=config.server.shutdown_timeout_s)
        app[IDEMPOTENCY].close()
    finally:
        await loop.run_in_executor(executor, sink.close)
        executor.shutdown(wait=True)


async def _audit_startup(app: web.Application) -> None:
    """Audit the policies found at start when they differ from the last audited version (a file
    changed while the service was stopped)."""
    last = {
        r["tenant_id"]: int(r["v"])
        for r in await app[DB].query(
            "SELECT tenant_id, argMax(new_version, time) AS v FROM policy_audit GROUP BY tenant_id"
        )
    }
    store = app[PIPELINE].policies
    changes = [
        PolicyChange(t, last.get(t, 0), store.for_tenant(t).version, "found at start")
        for t in store.tenant_ids
        if last.get(t) != store.for_tenant(t).version
    ]
    await policy_api.write_audit(app, changes, "startup", "file")


async def _sweep_salts(app: web.Application) -> None:
    """Destroys expired visitor salts; survives file-system errors and retries (see salts.py)."""
    await sweep_forever(app[PIPELINE].salts, SALT_SWEEP_SECONDS)


async def _policy_reload_and_salts(app: web.Application) -> AsyncIterator[None]:
    """SIGHUP reloads the policy files; a background task destroys expired visitor salts."""
    await _audit_startup(app)
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[object]] = set()

    def on_sighup() -> None:
        task = asyncio.create_task(policy_api.reload_policies(app))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        installed = True
    sweeper = asyncio.create_task(_sweep_salts(app))
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    if installed:
        loop.remove_signal_handler(signal.SIGHUP)
    await asyncio.gather(*reloads, return_exceptions=True)
