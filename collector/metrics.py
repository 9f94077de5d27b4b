"""Counters for `/metrics` (Prometheus text). Labels are kinds, fields and reasons, never values.

Tenant ids appear only in the `collector_tenant_*` series, and only for a caller allowed to see
those tenants (`collector.metrics_access`); everyone else gets tenant-free aggregates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence

# (name, "counter" | "gauge", {label text such as 'table="x"' or "": value}): state kept by
# other objects (batchers, the salt store), rendered at scrape time
Family = tuple[str, str, dict[str, float]]


class Metrics:
    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[tuple[str, str]] = Counter()
        # (tenant, kind, reason): identifiers stripped or record dropped by consent rules
        self.consent: Counter[tuple[str, str, str]] = Counter()
        self.dropped_fields: Counter[str] = Counter()  # by kind: fields with no rule, dropped
        # SIGHUP reloads by outcome: applied, refused_invalid (a bad file), refused_audit
        self.policy_reloads: Counter[str] = Counter()

    def render(
        self,
        gauges: dict[str, float],
        families: Sequence[Family] = (),
        tenants: Collection[str] | None = (),
    ) -> str:
        """The exposition; per-tenant series only for `tenants` (None: every tenant)."""
        consent: Counter[tuple[str, str]] = Counter()
        for (_, k, r), v in self.consent.items():
            consent[(k, r)] += v
        lines = [
            "# TYPE collector_records_received_total counter",
            *(
                f'collector_records_received_total{{kind="{k}"}} {v}'
                for k, v in self.received.items()
            ),
            "# TYPE collector_records_accepted_total counter",
            *(
                f'collector_records_accepted_total{{kind="{k}"}} {v}'
                for k, v in self.accepted.items()
            ),
            "# TYPE collector_records_rejected_total counter",
            *(
                f'collector_records_rejected_total{{kind="{k}",field="{f}"}} {v}'
                for (k, f), v in self.rejected.items()
            ),
            "# TYPE collector_fields_dropped_total counter",
            *(
                f'collector_fields_dropped_total{{kind="{k}"}} {v}'
                for k, v in self.dropped_fields.items()
            ),
            "# TYPE collector_records_consent_limited_total counter",
            *(
                f'collector_records_consent_limited_total{{kind="{k}",reason="{r}"}} {v}'
                for (k, r), v in consent.items()
            ),
            "# TYPE collector_policy_reloads_total counter",
            *(
                f'collector_policy_reloads_total{{outcome="{o}"}} {v}'
                for o, v in self.policy_reloads.items()
            ),
        ]
        if tenants is None or tenants:  # the per-tenant series exist only for who may see them
            lines += [
                "# TYPE collector_tenant_records_consent_limited_total counter",
                *(
                    "collector_tenant_records_consent_limited_total"
                    f'{{tenant="{t}",kind="{k}",reason="{r}"}} {v}'
                    for (t, k, r), v in self.consent.items()
                    if tenants is None or t in tenants
                ),
            ]
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        for name, kind, samples in families:
            lines.append(f"# TYPE {name} {kind}")
            lines += [f"{name}{{{lb}}} {v}" if lb else f"{name} {v}" for lb, v in samples.items()]
        return "\n".join(lines) + "\n"
