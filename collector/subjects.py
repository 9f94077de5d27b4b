"""Data-subject rights: access / portability (`POST /v1/subjects/export`) and erasure
(`POST /v1/subjects/delete`), privacy scope.

Rows hold only keyed pseudonyms, so a subject is found by computing their pseudonym under every
key epoch the tenant still holds, then matching every table column that holds that kind of
pseudonym. Epochs whose key was shredded cannot be searched: those rows are already unlinkable
to anyone, which is what shredding is for. A deletion is verified by counting afterwards, and
the daily rollups of the affected days are rebuilt from what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import orjson
from aiohttp import web

from anonymizer.imb import ImbError, parse_imb
from anonymizer.kinds import KINDS
from anonymizer.pseudonym import pseudonymize
from collector import rollups
from collector.appkeys import CONFIG, DB, PIPELINE, SHIPPER, TENANT
from collector.errors import BadRequest, ServiceUnavailable
from collector.params import check_names
from collector.statements import Statements

log = logging.getLogger(__name__)
MAX_EXPORT_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class SubjectColumn:
    table: str
    column: str


class HasIdentifiers(Protocol):
    """A record kind as far as subject rights go (`anonymizer.kinds.Kind` is one)."""

    @property
    def table(self) -> str: ...
    @property
    def identifiers(self) -> Mapping[str, tuple[str, ...]]: ...


def subject_columns(kinds: Iterable[HasIdentifiers]) -> dict[str, tuple[SubjectColumn, ...]]:
    """Identifier -> the stored columns that hold its pseudonym, in every kind's table: read
    from the rules' identifier entries (via the kind registry), so a new kind or a new
    pseudonymized identifier is searched and deleted without an edit here."""
    out: dict[str, tuple[SubjectColumn, ...]] = {}
    for kind in kinds:
        for identifier, columns in kind.identifiers.items():
            out[identifier] = out.get(identifier, ()) + tuple(
                SubjectColumn(kind.table, c) for c in columns
            )
    return out


# which stored columns hold the pseudonym of each kind of subject identifier
SUBJECT_COLUMNS: Mapping[str, tuple[SubjectColumn, ...]] = MappingProxyType(
    subject_columns(KINDS.values())
)


async def _subject(request: web.Request) -> tuple[str, str]:
    """(pseudonym field, raw value) from a body naming exactly one of user_id, device_id, imb."""
    check_names(request.query, ())  # takes no query parameters: any is refused, none ignored
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("body must be a JSON object naming user_id, device_id or imb") from None
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("body must name exactly one of user_id, device_id, imb")
    ((name, value),) = body.items()
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if name not in ("user_id", "device_id", "imb") or not isinstance(value, str) or not value:
        raise BadRequest("body must name exactly one of user_id, device_id, imb (a string)")
    if name == "imb":  # the barcode a person holds names the piece: its mailer id + serial
        try:
            imb = parse_imb(value)
        except ImbError as e:
            raise BadRequest(f"imb: {e}") from None
        return "imb.serial", imb.mailer_id + imb.serial
    return name, value


def _pseudonyms(request: web.Request, field: str, value: str) -> tuple[list[str], list[str]]:
    """(pseudonyms, epochs): the subject's pseudonym under every key the tenant still holds."""
    tenant = request[TENANT].id
    keys = request.app[PIPELINE].keys
    epochs = [k.epoch for k in keys.key_files(tenant)]
    return [pseudonymize(keys.get(tenant, e), field, value) for e in epochs], epochs


async def _ship_waiting_rows(request: web.Request) -> None:
    """Rows accepted before this request may still wait in the spool: they are inserted first,
    so an export sees them and a deletion reaches them (503 when the engine cannot take them
    now; nothing was deleted)."""
    shipper = request.app.get(SHIPPER)
    if shipper is None:
        return
    if not await shipper.flush(request.app[CONFIG].spool.subject_drain_timeout_s):
        raise ServiceUnavailable(
            "rows waiting in the spool cannot be inserted now; retry later", retry_after=30
        )


def _where(col: SubjectColumn) -> str:
    return f"tenant_id = {{tenant:String}} AND `{col.column}` IN {{ps:Array(String)}}"


async def export_subject(request: web.Request) -> web.Response:
    field, value = await _subject(request)
    await _ship_waiting_rows(request)
    pseudonyms, epochs = _pseudonyms(request, field, value)
    params = {"tenant": request[TENANT].id, "ps": pseudonyms}
    tables: dict[str, list[dict[str, Any]]] = {}
    truncated = False
    for col in SUBJECT_COLUMNS[field] if pseudonyms else ():
        rows = await request.app[DB].query(
            f"SELECT * FROM `{col.table}` WHERE {_where(col)} ORDER BY time "
            f"LIMIT {MAX_EXPORT_ROWS + 1}",
            params,
        )
        truncated |= len(rows) > MAX_EXPORT_ROWS
        tables.setdefault(col.table, []).extend(rows[:MAX_EXPORT_ROWS])
    body: dict[str, Any] = {
        "subject": field,
        "epochs_searched": epochs,
        "rows": sum(len(r) for r in tables.values()),
        "tables": tables,
    }
    if truncated:
        body["truncated"] = True
    return web.json_response(body)


async def delete_subject(request: web.Request) -> web.Response:
    field, value = await _subject(request)
    await _ship_waiting_rows(request)
    pseudonyms, epochs = _pseudonyms(request, field, value)
    params = {"tenant": request[TENANT].id, "ps": pseudonyms}
    deleted: dict[str, int] = {}
    remaining = 0
    for col in SUBJECT_COLUMNS[field] if pseudonyms else ():
        db = request.app[DB]
        count = f"SELECT count() AS n FROM `{col.table}` WHERE {_where(col)}"
        before = int((await db.query(count, params))[0]["n"])
        if before:
            found = f"SELECT DISTINCT toDate(time) AS day FROM `{col.table}` WHERE {_where(col)}"
            days = [str(r["day"]) for r in await db.query(found, params)]
            # on a cluster: the local table on every shard (a Distributed one takes no DELETE)
            await db.query(Statements(db.sink.cluster).delete(col.table, _where(col)), params)
            # the rollups' sketches of those days still count the subject: rebuild them
            await db.run(rollups.rebuild_days, db.sink, col.table, request[TENANT].id, days)
        after = int((await db.query(count, params))[0]["n"])
        deleted[col.table] = deleted.get(col.table, 0) + before - after
        remaining += after
    log.info(
        "subject deletion for tenant %s (%s): %d rows deleted, %d remaining",
        request[TENANT].id, field, sum(deleted.values()), remaining,
    )  # fmt: skip
    return web.json_response(
        {
            "subject": field,
            "epochs_searched": epochs,
            "deleted": deleted,
            "verified": remaining == 0,
        },
        status=200 if remaining == 0 else 500,
    )
