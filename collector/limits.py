"""Back-pressure before memory runs out: a cap on ingest requests in flight (503) and a per-tenant
record rate (429), both answered at once with `Retry-After` so well-behaved senders slow down
instead of piling up."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from collector.config import TenantConfig
from collector.errors import ServiceUnavailable, TooManyRequests

BURST_SECONDS = 2.0


class InFlight:
    """Ingest requests being processed; bodies of up to 64 MiB each are what it bounds."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.count >= self.limit:
            raise ServiceUnavailable("too many requests in flight", retry_after=1)
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


class RateLimiter:
    """A token bucket per tenant, in records per second, holding up to two seconds' worth.

    A request is admitted while the bucket is not in debt and takes all its records from it (it
    may go below zero), so a request larger than the bucket still passes when the tenant has
    been quiet, and the debt sets the `Retry-After` of the next one.
    """

    def __init__(
        self, tenants: tuple[TenantConfig, ...], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rates = {t.id: t.max_records_per_second for t in tenants if t.max_records_per_second}
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)

    def admit(self, tenant_id: str, records: int) -> None:
        rate = self.rates.get(tenant_id)
        if rate is None:
            return
        now = self.clock()
        tokens, at = self._buckets.get(tenant_id, (rate * BURST_SECONDS, now))
        tokens = min(rate * BURST_SECONDS, tokens + (now - at) * rate)
        if tokens < 0:
            self._buckets[tenant_id] = (tokens, now)
            raise TooManyRequests(
                f"over the tenant's rate of {rate} records/s", retry_after=math.ceil(-tokens / rate)
            )
        self._buckets[tenant_id] = (tokens - records, now)
