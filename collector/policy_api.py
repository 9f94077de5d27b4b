"""The privacy team's API: the effective policy, changing it, and the audit trail.

`GET /v1/policy` (analyst, privacy), `PUT /v1/policy` (privacy; body: the tenant's override as
TOML), `GET /v1/policy/audit` (privacy). Every change, by API or file reload, is written to
`policy_audit` with who made it.
"""

from __future__ import annotations

import logging
import time
import uuid

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from anonymizer.policy import policy_settings
from collector.appkeys import DB, METRICS, PIPELINE, TENANT
from collector.errors import BadRequest, PayloadTooLarge, UnprocessableEntity
from collector.params import check_names
from collector.policies import PolicyChange, PolicyRefused

log = logging.getLogger(__name__)
MAX_POLICY_BYTES = 64 * 1024


async def write_audit(
    app: web.Application, changes: list[PolicyChange], actor: str, source: str
) -> None:
    if not changes:
        return
    now = time.time()
    rows = b"\n".join(
        orjson.dumps(
            {
                "time": now,
                "tenant_id": c.tenant_id,
                "actor": actor,
                "source": source,
                "old_version": c.old_version,
                "new_version": c.new_version,
                "diff": c.diff,
            }
        )
        for c in changes
    )
    await app[DB].insert("policy_audit", rows, uuid.uuid4().hex)
    for c in changes:
        log.info(
            "policy of tenant %s: version %d -> %d (%s by %s)",
            c.tenant_id,
            c.old_version,
            c.new_version,
            source,
            actor,
        )


async def reload_policies(app: web.Application, actor: str = "file") -> list[PolicyChange]:
    """SIGHUP: re-read the policy files, write the audit rows, and only then put them in force.

    A bad file, or audit rows that cannot be written (storage failing), refuse the reload: the
    policies in force stay, and it is logged and counted (`collector_policy_reloads_total`).
    Send SIGHUP again once the cause is gone.
    """
    store = app[PIPELINE].policies
    outcomes = app[METRICS].policy_reloads
    async with store.changing:
        try:
            pending = store.prepare_reload()
        except PolicyRefused as e:
            log.error("policy reload refused, the policies in force stay: %s", e)
            outcomes["refused_invalid"] += 1
            return []
        try:
            await write_audit(app, pending.changes, actor, "file")
        except Exception as e:  # storage failing: no audit row, so no change
            log.error(
                "policy reload refused, the policies in force stay: its audit rows cannot be "
                "written (%s); send SIGHUP again when storage is back",
                type(e).__name__,
            )
            outcomes["refused_audit"] += 1
            return []
        store.commit(pending)  # cannot be refused: `changing` kept every other change out
    outcomes["applied"] += 1
    return pending.changes


async def read_policy_body(request: web.Request) -> bytes:
    """The whole body, however many pieces it arrives in, and never more than
    `MAX_POLICY_BYTES` of it held (413 beyond: a declared length is refused before reading)."""
    if request.content_length is not None and request.content_length > MAX_POLICY_BYTES:
        raise PayloadTooLarge(f"a policy is at most {MAX_POLICY_BYTES} bytes")
    body = bytearray()
    try:
        while chunk := await request.content.read(MAX_POLICY_BYTES + 1 - len(body)):
            body += chunk
            if len(body) > MAX_POLICY_BYTES:
                raise PayloadTooLarge(f"a policy is at most {MAX_POLICY_BYTES} bytes")
    except RequestPayloadError:
        raise BadRequest("policy body cannot be read with its Content-Encoding") from None
    return bytes(body)


async def get_policy(request: web.Request) -> web.Response:
    check_names(request.query, ())
    tenant = request[TENANT]
    store = request.app[PIPELINE].policies
    return web.json_response(
        {
            "tenant_id": tenant.id,
            "version": store.for_tenant(tenant.id).version,
            "settings": policy_settings(store.for_tenant(tenant.id)),
            "default_policy": store.default_text,
            "tenant_override": store.overrides.get(tenant.id),
        }
    )


async def put_policy(request: web.Request) -> web.Response:
    check_names(request.query, ())
    tenant = request[TENANT]
    body = await read_policy_body(request)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("policy must be UTF-8 TOML") from None
    store = request.app[PIPELINE].policies
    async with store.changing:  # no other change between the check, the audit and the swap
        try:
            change, _ = store.check_override(tenant.id, text)
        except PolicyRefused as e:
            raise UnprocessableEntity(
                f"policy refused, the policy in force stays: {e.error}"
            ) from None
        # audited before it takes effect: a change that cannot be audited does not happen
        await write_audit(request.app, [change], tenant.key_id, "api")
        try:
            store.put_override(tenant.id, text)
        except PolicyRefused as e:
            raise UnprocessableEntity(
                f"policy refused, the policy in force stays: {e.error}"
            ) from None
    return web.json_response(
        {
            "tenant_id": tenant.id,
            "old_version": change.old_version,
            "new_version": change.new_version,
            "diff": change.diff.splitlines(),
        }
    )


async def get_audit(request: web.Request) -> web.Response:
    check_names(request.query, ())
    rows = await request.app[DB].query(
        "SELECT toString(time) AS time, actor, source, old_version, new_version, diff "
        "FROM policy_audit WHERE tenant_id = {t:String} ORDER BY time DESC LIMIT 1000",
        {"t": request[TENANT].id},
    )
    return web.json_response({"tenant_id": request[TENANT].id, "entries": rows})
