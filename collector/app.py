"""The app factory. Tests build the app through the same `create_app` the service runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from collector import (
    admin_api,
    analyst_reports,
    dashboard,
    handlers,
    outcomes_api,
    policy_api,
    privacy_view,
    reports,
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
    OUTCOMES,
    PIPELINE,
    RATES,
    ROLE,
    SCHEMA,
    SHIPPER,
    SINK,
    SPOOL,
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
from collector.outcomes import TABLE as OUTCOMES_TABLE
from collector.outcomes import OutcomeRecorder
from collector.pipeline import Pipeline
from collector.policies import PolicyChange, PolicyRefused, PolicyStore
from collector.priority import lower_engine_threads, lower_this_thread
from collector.roles import Role, workers_spool_root
from collector.salts import SWEEP_INTERVAL_S, SaltStore, sweep_forever, wall_clock_ms
from collector.schema import Schema
from collector.sealing import load_sealer
from collector.shipper import InsertFileFn, InsertFn, Shipper, SpoolCollector
from collector.sink import AsyncSink
from collector.spool import Spool
from collector.storage import open_sink
from collector.workers import (
    forward,
    local_or_forward,
    notify_policy_change,
    read_worker_metrics,
    worker_readyz,
    worker_storage,
)

log = logging.getLogger(__name__)
SALT_SWEEP_SECONDS = SWEEP_INTERVAL_S
ENGINE_PRIORITY_S = 5.0  # how often the engine's new threads are looked for


def create_app(config: Config, role: Role | None = None) -> web.Application:
    """The service; `role`: its part in `serve --workers N` (None: the only process)."""
    if role is not None and role.kind == "ingest":
        return create_ingest_worker_app(config, role)
    app = web.Application(
        client_max_size=config.server.max_decompressed_bytes,
        middlewares=[dashboard.security_headers, errors_middleware, auth_middleware],
    )
    app[CONFIG] = config
    app[AUTH] = Authenticator(config.tenants)
    app[METRICS] = Metrics()
    app[INFLIGHT] = InFlight(config.server.max_inflight_requests, config.server.inflight_per_tenant)
    app[RATES] = RateLimiter(config.tenants)
    if role is not None:  # the primary: the workers' counters and policy changes
        app[ROLE] = role
        app.on_response_prepare.append(notify_policy_change)
        app[METRICS].others = lambda: read_worker_metrics(config)
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


def create_ingest_worker_app(config: Config, role: Role) -> web.Application:
    """An ingest worker (collector/workers.py): ingest into its own spool; what needs the one
    shared place (the engine, an Idempotency-Key, a rate limit) is forwarded to the primary."""
    app = web.Application(
        client_max_size=config.server.max_decompressed_bytes,
        middlewares=[errors_middleware, auth_middleware],
    )
    app[CONFIG] = config
    app[ROLE] = role
    app[AUTH] = Authenticator(config.tenants)
    app[METRICS] = Metrics()
    app[INFLIGHT] = InFlight(config.server.max_inflight_requests, config.server.inflight_per_tenant)
    app[RATES] = RateLimiter(())  # limited tenants are forwarded: the primary holds the limit
    app.cleanup_ctx.append(_pipeline)
    app.cleanup_ctx.append(lambda a: worker_storage(a, role))
    ingest = frozenset({"ingest"})
    for kind in KINDS.values():
        handler = local_or_forward(handlers.ingest_handler(kind))
        app.router.add_post(kind.route, _scoped(_bounded(handler), ingest))
    otlp = local_or_forward(handlers.ingest_otlp)
    app.router.add_post("/otlp/v1/logs", _scoped(_bounded(otlp), ingest))
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", worker_readyz)
    app.router.add_get("/openapi.json", handlers.openapi)
    app.router.add_route("*", "/{tail:.*}", forward)  # everything else: the primary answers
    return app


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
    app.router.add_post("/otlp/v1/traces", _scoped(_bounded(handlers.ingest_otlp_traces), ingest))
    app.router.add_post("/otlp/v1/metrics", _scoped(handlers.otlp_metrics, ingest))
    app.router.add_get(
        "/v1/policy", _scoped(policy_api.get_policy, frozenset({"analyst", "privacy"}))
    )
    app.router.add_put("/v1/policy", _scoped(policy_api.put_policy, frozenset({"privacy"})))
    app.router.add_get("/v1/policy/audit", _scoped(policy_api.get_audit, frozenset({"privacy"})))
    readers = frozenset({"analyst", "privacy"})
    for path, report in analyst_reports.ROUTES.items():  # before /v1/reports/{name}
        app.router.add_get(path, _scoped(report, readers))
    app.router.add_get(
        "/v1/outcomes",
        _scoped(outcomes_api.get_outcomes, frozenset({"ingest", "analyst", "privacy"})),
    )
    app.router.add_get(
        "/v1/reports/{name}", _scoped(reports.get_report, frozenset({"analyst", "privacy"}))
    )
    privacy = frozenset({"privacy"})
    app.router.add_post("/v1/subjects/export", _scoped(subjects.export_subject, privacy))
    app.router.add_post("/v1/subjects/delete", _scoped(subjects.delete_subject, privacy))
    app.router.add_post("/v1/admin/sql", _scoped(admin_api.post_sql, frozenset({"admin"})))
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
    geoip = GeoIp(config.enrich.geoip_database, config.enrich.geoip_cache_size)
    try:
        policies = PolicyStore(
            config.policy_file, config.tenant_policy_dir, [t.id for t in config.tenants]
        )
    except PolicyRefused as e:
        raise ConfigError(f"policy refused: {e}") from e
    sealer = load_sealer(config.storage.master_key_file)
    app[PIPELINE] = Pipeline(
        policies,
        KeyStore(config.storage.keys_path, sealer=sealer),
        SaltStore(config.storage.salts_path, sealer, policies.late_window_ms),
        Enricher(UserAgentParser(config.enrich.user_agent_cache_size), geoip),
    )
    yield
    geoip.close()


async def _storage(app: web.Application) -> AsyncIterator[None]:
    """Open the engine and migrate on its own thread (an unreachable server: in the background,
    inserts answered 503 until done); on the way out flush, then close."""
    config = app[CONFIG]
    storage = config.storage
    executor = ThreadPoolExecutor(
        max_workers=1,
        thread_name_prefix="sink",
        initializer=lower_this_thread,  # the engine's work yields to the ingest path
        initargs=(storage.engine_nice,),
    )
    loop = asyncio.get_running_loop()
    sink = await loop.run_in_executor(executor, open_sink, storage)
    schema = app[SCHEMA] = Schema()
    priority = asyncio.create_task(_engine_priority(storage.engine_nice))
    try:
        app[SINK] = sink
        db = app[DB] = AsyncSink(sink, executor)
        await schema.migrate(db)  # a server out of reach: retried in the background

        async def insert(table: str, rows: bytes, token: str) -> None:
            schema.check()
            await db.insert(table, rows, token)

        async def insert_file(table: str, path: Path, token: str) -> None:
            schema.check()
            await db.insert_file(table, path, token)

        async def probe(table: str) -> None:
            schema.check()
            await db.probe(table)

        tables = [k.table for k in KINDS.values()]
        batchers = Batchers(tables, insert, config.batch, probe=probe)
        app[BATCHERS] = batchers
        batchers.start()
        app[OUTCOMES] = OutcomeRecorder(db.insert)
        app[OUTCOMES].start()
        app[IDEMPOTENCY] = IdempotencyStore(
            storage.path / "idempotency.jsonl",
            config.idempotency.max_keys_per_tenant,
            config.idempotency.max_bytes_per_tenant,
            config.idempotency.compact_min_bytes,
        )
        state = StateCollector(batchers, app[PIPELINE].salts, app[IDEMPOTENCY], wall_clock_ms)
        app[METRICS].registry.register(state)
        # the outcomes table is spooled too: ingest workers count into their spools
        spooled = [*tables, OUTCOMES_TABLE]
        shipper = (
            await _start_spool(app, spooled, insert, insert_file) if config.spool.enabled else None
        )
        yield
        app[METRICS].registry.unregister(state)
        if shipper is not None:
            await app[SPOOL].close()
            await shipper.close(timeout_s=config.spool.drain_timeout_s)
        await schema.close()
        await batchers.close(timeout_s=config.server.shutdown_timeout_s)
        await app[OUTCOMES].close()
        app[IDEMPOTENCY].close()
    finally:
        priority.cancel()
        await loop.run_in_executor(executor, sink.close)
        executor.shutdown(wait=True)


async def _engine_priority(nice: int) -> None:
    """The engine's threads, found again now and then (its pools grow on demand), run below the
    ingest path (collector/priority.py)."""
    while nice > 0:
        lower_engine_threads(nice)
        await asyncio.sleep(ENGINE_PRIORITY_S)


async def _start_spool(
    app: web.Application, tables: list[str], insert: InsertFn, insert_file: InsertFileFn
) -> Shipper:
    """The spool (what a previous run left is checked, its Idempotency-Keys learnt) and its
    shipper, which starts with the leftover segments."""
    config = app[CONFIG]
    spool = Spool(config.storage.path / "spool", tables, config.spool)
    notes = await asyncio.to_thread(spool.recover)
    restored = app[IDEMPOTENCY].restore(notes)
    left = sum(len(q) for q in spool.sealed.values())
    if left:
        log.info(
            "spool: %d segments (%d bytes) left by the previous run, shipping; %d idempotency "
            "keys restored",
            left, spool.total_bytes, restored,
        )  # fmt: skip
    spool.start()
    workers_root = workers_spool_root(config) if ROLE in app else None
    # the embedded engine reads a segment's body from a file on the disk it writes to anyway;
    # a server's is built in memory, so a full disk here never stops the drain
    scratch = config.storage.tmp_path if config.storage.engine == "embedded" else None
    shipper = Shipper(spool, insert, insert_file, config.spool, scratch, workers_root)
    shipper.start()
    app[SPOOL] = spool
    app[SHIPPER] = shipper
    app[METRICS].registry.register(SpoolCollector(shipper))
    return shipper


async def _audit_startup(app: web.Application) -> None:
    """Audit the policies found at start when they differ from the last audited version (a file
    changed while the service was stopped); once the schema is migrated."""
    await app[SCHEMA].when_ready(lambda: _audit_found_policies(app))


async def _audit_found_policies(app: web.Application) -> None:
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
