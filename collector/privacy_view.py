"""`GET /v1/privacy/overview` (privacy scope): what the privacy team checks, on one page.

The policy in force, the audit history with the names of the keys that made each change, the
pseudonym key epochs still held and those shredded (with dates), consent counters, and the result
of the last `collector scan-pii`. Only the caller's tenant; no stored value is shown, only
settings, counts and dates.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from anonymizer.policy import policy_settings
from collector.appkeys import AUTH, CONFIG, DB, METRICS, PIPELINE, TENANT
from collector.params import check_names
from collector.scan_pii import load_last

AUDIT_ROWS = 200
_SYSTEM_ACTORS = {"file": "policy file", "startup": "collector start"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


async def privacy_overview(request: web.Request) -> web.Response:
    check_names(request.query, ())
    tenant = request[TENANT].id
    app = request.app
    pipeline = app[PIPELINE]
    policy = pipeline.policies.for_tenant(tenant)
    names = app[AUTH].names(tenant)
    audit = await app[DB].query(
        "SELECT toString(time) AS time, actor, source, old_version, new_version, diff "
        "FROM policy_audit WHERE tenant_id = {t:String} ORDER BY time DESC LIMIT {n:UInt32}",
        {"t": tenant, "n": AUDIT_ROWS},
    )
    for row in audit:
        row["actor_name"] = names.get(row["actor"]) or _SYSTEM_ACTORS.get(row["actor"], "")
    current = pipeline.epoch(tenant, datetime.now(UTC))
    held = [
        {"epoch": k.epoch, "created": _iso(k.created), "in_force": k.epoch == current}
        for k in pipeline.keys.key_files(tenant)
    ]
    shredded = [{"epoch": e, "shredded": _iso(t)} for e, t in pipeline.keys.shredded(tenant)]
    stored = await app[DB].query(
        "SELECT consent_reason AS reason, countIf(identifiers_stripped) AS stripped, "
        "count() AS events FROM usage_events WHERE tenant_id = {t:String} "
        "GROUP BY reason ORDER BY reason",
        {"t": tenant},
    )
    since_start = [
        {"kind": kind, "reason": reason, "records": n}
        for (t, kind, reason), n in sorted(app[METRICS].consent.items())
        if t == tenant
    ]
    return web.json_response(
        {
            "tenant_id": tenant,
            "policy": {"version": policy.version, "settings": policy_settings(policy)},
            "audit": audit,
            "keys": {"rotation": policy.identifiers.rotation, "held": held, "shredded": shredded},
            "consent": {"stored_events": stored, "since_start": since_start},
            "scan_pii": load_last(app[CONFIG].storage.path),
        }
    )
