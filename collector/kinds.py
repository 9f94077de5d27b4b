"""How the service serves each record kind: the HTTP route it is posted to and the enrichment
its records get. Everything else (name, table, input fields, validator, row builder) is the pure
library's kind (`anonymizer.kinds.KINDS`), which this only wraps: one pipeline serves them all."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from anonymizer import Enrichment, Policy, TenantContext
from anonymizer import kinds as pure
from anonymizer.errors import RecordInvalid
from anonymizer.types import AccessRecord, DeviceRecord
from anonymizer.validate import TimeWindow
from collector.enrich import Enricher

Row = dict[str, Any]
# (row or None when policy drops the record, reason it was dropped or stripped or "")
BuildRow = Callable[[Policy, TenantContext, Any, Enricher], tuple[Row | None, str]]
Enrich = Callable[[Enricher, Any], Enrichment]


@dataclass(frozen=True, slots=True)
class Kind:
    """A record kind as the service ingests it (or stands for one, see `OTLP_UNMAPPED`)."""

    name: str
    route: str
    table: str
    validate: Callable[[Any, TimeWindow], Any]
    build_row: BuildRow
    fields: frozenset[str]  # the input fields that have a rule; any other is rejected or dropped
    allow_text: bool = False  # combined-log text lines are access logs only


def _no_enrichment(e: Enricher, record: Any) -> Enrichment:
    return Enrichment()


def _agent_and_geo(e: Enricher, r: AccessRecord | DeviceRecord) -> Enrichment:
    return Enrichment(e.user_agent(r.user_agent), e.geo(r.ip))


def serve(
    kind: pure.Kind, route: str, enrich: Enrich = _no_enrichment, allow_text: bool = False
) -> Kind:
    """The pure `kind` posted to `route`, its records enriched by `enrich` before their row is
    built (the full address and agent are read here, in memory, and never stored)."""

    def build_row(
        policy: Policy, ctx: TenantContext, record: Any, e: Enricher
    ) -> tuple[Row | None, str]:
        return kind.build(policy, ctx, record, enrich(e, record))

    return Kind(kind.name, route, kind.table, kind.validate, build_row, kind.fields, allow_text)


_PURE = pure.KINDS
ACCESS_LOG = serve(_PURE["access_log"], "/v1/logs", _agent_and_geo, allow_text=True)
DEVICE = serve(_PURE["device"], "/v1/devices", _agent_and_geo)
EVENT = serve(_PURE["event"], "/v1/events")
MAIL_SCAN = serve(_PURE["mail_scan"], "/v1/mail-scans")
# keyed by the pure kind's name; every kind of the registry is served (a test checks it)
KINDS: Mapping[str, Kind] = {k.name: k for k in (ACCESS_LOG, DEVICE, EVENT, MAIL_SCAN)}


def _unmapped(raw: Any, window: TimeWindow) -> Any:
    raise RecordInvalid("", "no record kind")


def _never(policy: Policy, ctx: TenantContext, record: Any, e: Enricher) -> tuple[Row | None, str]:
    raise RecordInvalid("", "no record kind")


# Stands for OTLP log records that map onto no kind, so they are counted and reported like any
# rejected record; nothing is ever validated or stored under it.
OTLP_UNMAPPED = Kind("otlp_unmapped", "/otlp/v1/logs", "", _unmapped, _never, frozenset())
