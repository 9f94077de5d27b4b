"""The per-record stages between decode and batch: validate -> enrich -> anonymize -> serialize.

Only the anonymized row is serialized; the typed record holding the full IP and raw identifiers
is dropped as soon as its row exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from anonymizer import Enrichment, Policy, TenantContext, anonymize_access
from collector.auth import Tenant
from collector.decode import Failed, Item
from collector.enrich import GeoIp, UserAgentParser
from collector.errors import RecordError
from collector.keys import KeyStore
from collector.records import TimeWindow, validate_access

MAX_ERRORS = 100


@dataclass
class Outcome:
    rows: list[bytes] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    rejected_fields: list[str] = field(default_factory=list)

    def reject(self, index: int, error: RecordError) -> None:
        self.rejected += 1
        self.rejected_fields.append(error.field)
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"index": index, "field": error.field, "error": error.error})

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "accepted": len(self.rows),
            "rejected": self.rejected,
            "errors": self.errors,
        }
        if self.rejected > len(self.errors):
            out["errors_truncated"] = True
        return out


class AccessPipeline:
    def __init__(
        self, policy: Policy, keys: KeyStore, user_agents: UserAgentParser, geoip: GeoIp
    ) -> None:
        self.policy = policy
        self.keys = keys
        self.user_agents = user_agents
        self.geoip = geoip

    def process(self, tenant: Tenant, items: list[Item], now: datetime | None = None) -> Outcome:
        now = now or datetime.now(UTC)
        policy = self.policy
        ctx = TenantContext(
            tenant.id, tenant.plan, self.keys.get(tenant.id, policy.identifiers.epoch(now))
        )
        window = TimeWindow.around(
            int(now.timestamp() * 1000), policy.retention.days_for(tenant.plan)
        )
        parse_ua = self.user_agents.parse
        geo = self.geoip.lookup
        out = Outcome()
        for index, item in enumerate(items):
            if isinstance(item, Failed):
                out.reject(index, item.error)
                continue
            try:
                record = validate_access(item, window)
            except RecordError as e:
                out.reject(index, e)
                continue
            enrichment = Enrichment(parse_ua(record.user_agent), geo(record.ip))
            out.rows.append(orjson.dumps(anonymize_access(policy, ctx, record, enrichment)))
        return out
