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
    """Ingest requests being processed; bodies of up to 64 MiB each are what it bounds.

    Slots are shared fairly: besides the total (`limit`), each tenant holds at most `per_tenant`
    of them, so one tenant's slow or huge bodies leave room for every other tenant.
    """

    def __init__(self, limit: int, per_tenant: int | None = None) -> None:
        self.limit = limit
        self.per_tenant = min(limit, per_tenant or limit)
        self.count = 0
        self.by_tenant: dict[str, int] = {}

    @contextmanager
    def slot(self, tenant_id: str = "") -> Iterator[None]:
        held = self.by_tenant.get(tenant_id, 0)
        if held >= self.per_tenant:
            raise ServiceUnavailable(
                f"this tenant has {held} ingest requests in flight, the most one tenant may "
                f"have (max_inflight_per_tenant = {self.per_tenant})",
                retry_after=1,
            )
        if self.count >= self.limit:
            raise ServiceUnavailable(
                f"too many ingest requests in flight (max_inflight_requests = {self.limit})",
                retry_after=1,
            )
        self.count += 1
        self.by_tenant[tenant_id] = held + 1
        try:
            yield
        finally:
            self.count -= 1
            left = self.by_tenant[tenant_id] - 1
            if left:
                self.by_tenant[tenant_id] = left
            else:
                del self.by_tenant[tenant_id]


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
