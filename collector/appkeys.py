"""Typed application state, all declared here (no module-level singletons)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    pass

CONFIG = web.AppKey["Config"]("config")
AUTH = web.AppKey["Authenticator"]("auth")
METRICS = web.AppKey["Metrics"]("metrics")
PIPELINE = web.AppKey["AccessPipeline"]("pipeline")
SINK = web.AppKey["Sink"]("sink")
ACCESS_BATCHER = web.AppKey["Batcher"]("access_batcher")
