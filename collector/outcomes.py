"""What became of every record: counted by tenant, kind, outcome and reason, so that a sender
and the operator see rejections that a 202 alone would hide (a shipper counts a 202 as
delivered whatever its body says).

Three views of the same counts:
- a log line per request that rejected anything (counts, the first record's index, field and
  reason code; never a value), rate-limited per tenant by `collector.log_limits`;
- `/metrics` (`collector.metrics`): `collector_records_outcomes_total{kind,outcome,reason}` and
  the per-tenant `collector_tenant_records_outcomes_total`;
- the `outcomes` table (sql/0010_outcomes.sql), one row per (tenant, hour, kind, outcome,
  reason) per flush, read by `GET /v1/outcomes`.

Reasons are codes from a fixed set (`collector.reasons`), derived from the rejection's message
and never the message itself: a metric label or a table column must not carry sender-chosen
text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from collector.errors import BadRequest
from collector.failures import describe
from collector.params import DATE_MIN, check_names, day
from collector.pipeline import Outcome

log = logging.getLogger(__name__)

TABLE = "outcomes"
FLUSH_S = 10.0
MAX_DAYS = 366
ACCEPTED, REJECTED, FILTERED, FAILED = "accepted", "rejected", "filtered", "failed"
RATE_LIMITED = "rate_limited"
REFUSED = "refused"  # counts requests, not records: a refused body's records were never read

Key = tuple[str, int, str, str, str]  # tenant, hour (epoch seconds), kind, outcome, reason
InsertFn = Callable[[str, bytes, str], Awaitable[None]]


def log_rejections(tenant: str, route: str, rejected: int, received: int, first: Any) -> None:
    """One line for a request that rejected anything: counts, the first rejected record's index,
    field (a schema name; an unknown field is not named) and reason code. At most a burst per
    tenant per window (`collector.log_limits`)."""
    field = "<unknown>" if first["reason"] == "unknown_field" else first["field"] or "-"
    log.warning(
        "rejected %d of %d records on %s for tenant %s; first: index %d, field %s, reason %s",
        rejected, received, route, tenant, first["index"], field, first["reason"],
        extra={"log_limit_key": ("rejected", tenant)},
    )  # fmt: skip


class OutcomeRecorder:
    """Counts in memory, inserted every `flush_s` (and at `flush`): one row per key per flush,
    never one per record. A failed insert keeps its counts for the next flush."""

    def __init__(self, insert: InsertFn, flush_s: float = FLUSH_S) -> None:
        self._insert = insert
        self.flush_s = flush_s
        self.pending: Counter[Key] = Counter()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.flush_errors = 0

    def add(self, tenant: str, kind: str, outcome: str, reason: str, n: int, now_s: int) -> None:
        if n:
            self.pending[(tenant, now_s - now_s % 3600, kind, outcome, reason)] += n

    async def flush(self) -> None:
        async with self._lock:
            batch, self.pending = self.pending, Counter()
            if not batch:
                return
            rows = b"\n".join(
                orjson.dumps(
                    {"tenant_id": t, "hour": h, "kind": k, "outcome": o, "reason": r, "count": n}
                )
                for (t, h, k, o, r), n in batch.items()
            )
            try:
                await self._insert(TABLE, rows, uuid.uuid4().hex)
            except Exception as e:
                self.flush_errors += 1
                self.pending.update(batch)  # counted again at the next flush
                log.warning("outcomes not stored, will retry: %s", describe(e))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outcomes")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


PARAMS = ("from", "to", "interval")
QueryFn = Callable[[str, dict[str, Any]], Awaitable[list[dict[str, Any]]]]


async def read_outcomes(
    recorder: OutcomeRecorder, query: QueryFn, tenant: str, params: Any
) -> dict[str, Any]:
    """The tenant's outcomes per day (or hour) from..to, counts of the same key added up."""
    check_names(params, PARAMS)
    today = datetime.now(UTC).date()
    to = day(params, "to", today)
    frm = day(params, "from", max(to - timedelta(days=6), DATE_MIN))
    if frm > to or (to - frm).days >= MAX_DAYS:
        raise BadRequest(f"from..to must be in order and span at most {MAX_DAYS} days")
    interval = params.get("interval", "day")
    if interval not in ("day", "hour"):
        raise BadRequest("interval: must be day or hour")
    await recorder.flush()  # what was counted so far is in the answer
    bucket = "toDate(hour)" if interval == "day" else "hour"
    rows = await query(
        f"SELECT {bucket} AS t, kind, outcome, reason, sum(count) AS n FROM {TABLE} "
        "WHERE tenant_id = {tenant:String} AND toDate(hour) BETWEEN {from:Date} AND {to:Date} "
        "GROUP BY t, kind, outcome, reason ORDER BY t, kind, outcome, reason",
        {"tenant": tenant, "from": frm.isoformat(), "to": to.isoformat()},
    )
    out = []
    for r in rows:
        t = str(r["t"])
        when = t if interval == "day" else t.replace(" ", "T") + "Z"
        out.append(
            {
                interval: when,
                "kind": r["kind"],
                "outcome": r["outcome"],
                "reason": r["reason"],
                "count": int(r["n"]),
            }
        )
    return {"from": frm.isoformat(), "to": to.isoformat(), "interval": interval, "rows": out}


def count_refused(
    recorder: OutcomeRecorder,
    metrics: Counter[tuple[str, str, str, str]],
    tenant: str,
    kind: str,
    records: int,
    outcome: str,
    reason: str = "",
) -> None:
    """A whole request refused before the pipeline saw its records: by the tenant's rate limit
    (`records` counted under `rate_limited`), or as `refused` (one request, `reason` a code of
    `collector.reasons.REFUSALS`)."""
    recorder.add(tenant, kind, outcome, reason, records, int(time.time()))
    metrics[(tenant, kind, outcome, reason)] += records


def count_request(
    recorder: OutcomeRecorder,
    metrics: Counter[tuple[str, str, str, str]],
    tenant: str,
    route: str,
    outcome: Outcome,
    stored: bool,
) -> None:
    """Count one request's records by outcome (for `/metrics` and the table), and log its
    rejections. `stored` is False when its rows could not be inserted (503): those `failed`."""
    now_s = int(time.time())
    counts: Counter[tuple[str, str, str]] = Counter()
    for (kind, reason), n in outcome.reasons.items():
        counts[(kind, REJECTED, reason)] += n
    for (kind, reason), n in outcome.filtered.items():
        counts[(kind, FILTERED, reason)] += n
    for kind, n in outcome.accepted.items():
        n -= sum(v for (k, _), v in outcome.filtered.items() if k == kind)
        counts[(kind, ACCEPTED, "") if stored else (kind, FAILED, "storage")] += n
    for (kind, state, reason), n in counts.items():
        if n > 0:
            recorder.add(tenant, kind, state, reason, n, now_s)
            metrics[(tenant, kind, state, reason)] += n
    if outcome.first_rejected is not None:
        received = sum(outcome.received.values())
        log_rejections(tenant, route, outcome.rejected_total, received, outcome.first_rejected)
