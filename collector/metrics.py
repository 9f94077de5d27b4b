"""`/metrics` through prometheus_client: the library writes HELP and TYPE lines and escapes label
values. Labels are kinds, fields, reasons, tables and tasks, never values.

Each app has its own `CollectorRegistry`. The service's state is not copied into library metric
objects: custom collectors read it at scrape time (the counters below, and `StateCollector` over
the batchers, the salt store and the Idempotency-Key store). Running several worker processes
later means swapping that registry for one with prometheus_client's `MultiProcessCollector`;
the visibility filter (`render`) works on whatever the registry yields.

Tenant ids appear only in the `collector_tenant_*` families (every sample carries a `tenant`
label), and only for a caller allowed to see those tenants (`collector.metrics_access`);
everyone else gets tenant-free aggregates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.batcher import Batcher, Batchers
from collector.idempotency import IdempotencyStore
from collector.salts import SaltStore

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what every Prometheus version reads
TENANT_LABEL = "tenant"
# every Counter attribute of `Metrics`: what an ingest worker publishes and the primary adds up
COUNTERS = (
    "received",
    "accepted",
    "rejected",
    "consent",
    "dropped_fields",
    "policy_reloads",
    "outcomes",
)
Samples = Iterable[tuple[Iterable[str], float]]  # (label values, value)


def counter(name: str, doc: str, labels: Iterable[str], samples: Samples) -> Metric:
    """A counter family; `name` is the exposed name (with `_total`, which the library adds back
    after taking it off)."""
    family = CounterMetricFamily(name, doc, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def gauge(name: str, doc: str, labels: Iterable[str], samples: Samples) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


class Metrics:
    """The counters the request path updates, and the registry `/metrics` renders."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[tuple[str, str]] = Counter()
        # (tenant, kind, reason): identifiers stripped or record dropped by consent rules
        self.consent: Counter[tuple[str, str, str]] = Counter()
        self.dropped_fields: Counter[str] = Counter()  # by kind: fields with no rule, dropped
        # (tenant, kind, outcome, reason): what became of each record (collector.outcomes)
        self.outcomes: Counter[tuple[str, str, str, str]] = Counter()
        # SIGHUP reloads by outcome: applied, refused_invalid (a bad file), refused_audit
        self.policy_reloads: Counter[str] = Counter()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_CountersCollector(self))
        # under `serve --workers N`, on the primary: the ingest workers' counters, added at
        # scrape time (collector/workers.py writes and reads them)
        self.others: Callable[[], list[dict[str, list[list[Any]]]]] | None = None

    def snapshot(self) -> dict[str, list[list[Any]]]:
        """The counters as JSON-ready lists of [key, count]."""
        return {name: [[k, v] for k, v in getattr(self, name).items()] for name in COUNTERS}

    def merged(self) -> Metrics:
        """These counters plus the other processes' (self when there are none)."""
        if self.others is None:
            return self
        total = Metrics.__new__(Metrics)
        for name in COUNTERS:
            setattr(total, name, Counter(getattr(self, name)))
        for snap in self.others():
            for name in COUNTERS:
                counts = getattr(total, name)
                for key, value in snap.get(name, []):
                    counts[tuple(key) if isinstance(key, list) else key] += value
        return total

    def render(self, tenants: Collection[str] | None = ()) -> bytes:
        """The exposition; per-tenant series only for `tenants` (None: every tenant)."""
        return generate_latest(_Visible(self.registry, tenants))


class _Visible(Collector):
    """A registry seen by one caller: samples labelled with a tenant it may not see are left
    out, and a family left with none of them is left out whole (a public scrape does not even
    name the per-tenant families)."""

    def __init__(self, registry: CollectorRegistry, tenants: Collection[str] | None) -> None:
        self.registry = registry
        self.tenants = tenants

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            if self.tenants is None or not family.name.startswith("collector_tenant_"):
                yield family
            elif self.tenants:
                family.samples = [
                    s for s in family.samples if s.labels.get(TENANT_LABEL) in self.tenants
                ]
                yield family


class _CountersCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m.merged()
        consent: Counter[tuple[str, str]] = Counter()
        for (_, k, r), v in m.consent.items():
            consent[(k, r)] += v
        yield counter(
            "collector_records_received_total",
            "Records received, by kind.",
            ["kind"],
            (((k,), v) for k, v in m.received.items()),
        )
        yield counter(
            "collector_records_accepted_total",
            "Records stored, by kind.",
            ["kind"],
            (((k,), v) for k, v in m.accepted.items()),
        )
        yield counter(
            "collector_records_rejected_total",
            "Records refused, by kind and the field at fault.",
            ["kind", "field"],
            (((k, f), v) for (k, f), v in m.rejected.items()),
        )
        yield counter(
            "collector_fields_dropped_total",
            "Fields with no rule in the policy, dropped, by kind.",
            ["kind"],
            (((k,), v) for k, v in m.dropped_fields.items()),
        )
        yield counter(
            "collector_records_consent_limited_total",
            "Records whose identifiers were stripped, or that were dropped, by consent rules.",
            ["kind", "reason"],
            (((k, r), v) for (k, r), v in consent.items()),
        )
        outcomes: Counter[tuple[str, str, str]] = Counter()
        for (_, k, o, r), v in m.outcomes.items():
            outcomes[(k, o, r)] += v
        yield counter(
            "collector_records_outcomes_total",
            "Records by what became of them: accepted, rejected, filtered, failed, rate_limited; "
            "refused counts whole requests (not records) refused; by reason.",
            ["kind", "outcome", "reason"],
            (((k, o, r), v) for (k, o, r), v in outcomes.items()),
        )
        yield counter(
            "collector_tenant_records_outcomes_total",
            "collector_records_outcomes_total for each tenant.",
            [TENANT_LABEL, "kind", "outcome", "reason"],
            (((t, k, o, r), v) for (t, k, o, r), v in m.outcomes.items()),
        )
        yield counter(
            "collector_policy_reloads_total",
            "Policy file reloads (SIGHUP), by outcome.",
            ["outcome"],
            (((o,), v) for o, v in m.policy_reloads.items()),
        )
        yield counter(
            "collector_tenant_records_consent_limited_total",
            "collector_records_consent_limited_total for each tenant.",
            [TENANT_LABEL, "kind", "reason"],
            (((t, k, r), v) for (t, k, r), v in m.consent.items()),
        )


class StateCollector(Collector):
    """Queues and failures of the background work, read at scrape time: the batchers (one per
    table), the salt sweep and the Idempotency-Key store."""

    def __init__(
        self,
        batchers: Batchers,
        salts: SaltStore,
        idempotency: IdempotencyStore,
        now_ms: Callable[[], int],
    ) -> None:
        self.batchers = batchers
        self.salts = salts
        self.idempotency = idempotency
        self.now_ms = now_ms

    def collect(self) -> Iterator[Metric]:
        batchers, salts, idem = self.batchers, self.salts, self.idempotency
        tables = list(batchers.by_table.values())

        def per_table(value: Callable[[Batcher], float]) -> Samples:
            return [((b.table,), value(b)) for b in tables]

        yield gauge(
            "collector_queued_rows", "Rows waiting for an insert.", [], [((), batchers.queued_rows)]
        )
        yield gauge(
            "collector_flushed_batches", "Batches inserted.", [], [((), batchers.flushed_batches)]
        )
        yield gauge(
            "collector_idempotency_file_bytes",
            "Size of the Idempotency-Key file.",
            [],
            [((), idem.file_bytes)],
        )
        yield gauge(
            "collector_idempotency_live_bytes",
            "Bytes of the Idempotency-Key entries in force.",
            [],
            [((), idem.live_bytes)],
        )
        yield gauge(
            "collector_idempotency_evicted_keys",
            "Idempotency keys forgotten at a bound.",
            [],
            [((), idem.evicted)],
        )
        tasks: list[tuple[Iterable[str], float]] = [
            ((f"batcher-{b.table}",), float(b.failed_batches + b.task_errors)) for b in tables
        ]
        tasks.append((("salt-sweep",), salts.sweep_errors))
        yield counter(
            "collector_background_errors_total",
            "Failures of a background task: a batch given up, a salt sweep failed.",
            ["task"],
            tasks,
        )
        yield counter(
            "collector_insert_errors_total",
            "Insert attempts that failed, by table.",
            ["table"],
            per_table(lambda b: b.insert_errors),
        )
        yield gauge(
            "collector_storage_failing",
            "1 while inserts into the table fail.",
            ["table"],
            per_table(lambda b: int(b.failing is not None)),
        )
        yield counter(
            "collector_salt_sweep_errors_total",
            "Salt sweeps that failed.",
            [],
            [((), salts.sweep_errors)],
        )
        yield gauge(
            "collector_salt_sweep_failing",
            "1 while the salt sweep fails.",
            [],
            [((), int(salts.sweep_failing is not None))],
        )
        yield gauge(
            "collector_salts_overdue",
            "Visitor salts past their destruction time still on disk.",
            [],
            [((), len(salts.overdue(self.now_ms())))],
        )
        yield counter(
            "collector_salts_destroyed_total",
            "Visitor salts destroyed.",
            [],
            [((), salts.destroyed_total)],
        )
