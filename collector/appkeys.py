"""Typed application and request state, all declared here (no module-level singletons)."""

from __future__ import annotations

from aiohttp import web

from collector.auth import Authenticator, Tenant
from collector.batcher import Batchers
from collector.config import Config
from collector.idempotency import IdempotencyStore
from collector.limits import InFlight, RateLimiter
from collector.metrics import Metrics
from collector.outcomes import OutcomeRecorder
from collector.pipeline import Pipeline
from collector.roles import Role
from collector.schema import Schema
from collector.shipper import Shipper
from collector.sink import AsyncSink, Sink
from collector.spool import Spool, Ticket

CONFIG = web.AppKey("config", Config)
AUTH = web.AppKey("auth", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
PIPELINE = web.AppKey("pipeline", Pipeline)
SINK = web.AppKey("sink", Sink)
DB = web.AppKey("db", AsyncSink)
SCHEMA = web.AppKey("schema", Schema)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
BATCHERS = web.AppKey("batchers", Batchers)
INFLIGHT = web.AppKey("inflight", InFlight)
RATES = web.AppKey("rates", RateLimiter)
ROLE = web.AppKey("role", Role)  # set under `serve --workers N` only
SPOOL = web.AppKey("spool", Spool)  # absent with [spool] enabled = false
SHIPPER = web.AppKey("shipper", Shipper)
SPOOL_TICKET = web.RequestKey("spool_ticket", Ticket)  # released once the request is settled
OUTCOMES = web.AppKey("outcomes", OutcomeRecorder)
TENANT = web.RequestKey("tenant", Tenant)  # set by the auth middleware
