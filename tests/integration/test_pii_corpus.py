"""The hostile corpus (tests/hostile.py) through every endpoint, then: no raw value, decoded
form, card or phone digits or embedded IPv4 in any column of any table (rollups included), and
`scan-pii` finds nothing."""

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from anonymizer.anonymize import NAMED_COLUMNS, detect_free_text
from anonymizer.policy import default_policy, parse_policy
from anonymizer.rules import KINDS, PII_KEYS, ROLLUP_COLUMNS, ROLLUPS, RULES, STAMPED
from collector.appkeys import SINK
from collector.config import Config
from collector.scan_pii import scan
from tests import hostile
from tests.conftest import OTHER_KEY, POLICY, AppFactory, auth, query


def every_stored_string(client: Any) -> list[str]:
    """Every text value of every String column of every table, read from system.columns."""
    out = []
    for col in query(client, hostile.STRING_COLUMNS_SQL):
        sql = hostile.column_sql(col["table"], col["name"], col["type"])
        out += [str(r["v"]) for r in query(client, sql) if r["v"]]
    return out


async def post_corpus(client: Any) -> Counter[str]:
    accepted: Counter[str] = Counter()
    for route, body, headers in hostile.requests():
        r = await client.post(route, data=body, headers=auth(**headers))
        assert r.status in (200, 202), (route, r.status, await r.text())
        if route != "/otlp/v1/logs":
            answer = await r.json()
            accepted[route] += answer["accepted"]
            assert all("@" not in e["error"] for e in answer["errors"])  # errors never echo
    return accepted


async def test_hostile_corpus_leaves_no_raw_value_anywhere(start: AppFactory) -> None:
    client = await start()
    accepted = await post_corpus(client)
    n = hostile.values_tried()
    assert n >= 300
    # stored, not refused: the corpus would prove nothing if the records were rejected
    assert accepted["/v1/logs"] >= 3 * len(hostile.corpus())
    assert accepted["/v1/events"] == len(hostile.corpus())
    in_text = [h for h in hostile.corpus() if not hostile.host_only(h)]
    assert accepted["/v1/mail-scans"] == len(in_text)
    counts = query(client, "SELECT count() AS n FROM usage_events")[0]["n"]
    assert counts == 3 * len(hostile.corpus())  # native + OTLP JSON + OTLP protobuf

    leaked = hostile.leaks_by_class(every_stored_string(client))
    assert leaked == Counter(), f"leaking values by class (of {n} tried): {dict(leaked)}"

    findings, scanned = scan(client.app[SINK], policy=parse_policy(POLICY.read_text()))
    assert scanned > 40 and findings == []
    # the placeholders are there instead
    paths = {r["path"] for r in query(client, "SELECT DISTINCT path FROM access_log")}
    assert {"/u/{email}/{email}", "/u/{card}/{card}", "/u/{ip}/{ip}"} <= paths


# --- every text column is made by a named operator or goes through the detectors ---------------


@pytest.fixture
async def start_schema(start: AppFactory) -> list[dict[str, Any]]:
    """The String columns of the schema the service migrates at start."""
    client = await start()
    return query(client, hostile.STRING_COLUMNS_SQL)


def test_every_text_column_is_named_or_free_text(start_schema: list[dict[str, Any]]) -> None:
    """Walks the String columns of the migrated schema: each record-table column is made by a
    named operator (NAMED_COLUMNS, with a rule that is not "stored as sent") or is free text (a
    rule governed by `pii.*`) and is then redacted by `detect_free_text`; each rollup text
    column is made only from such columns."""
    columns = start_schema
    tables = {k.table for k in KINDS.values()}
    rule_of: dict[tuple[str, str], list[Any]] = {}
    for r in RULES:
        for c in r.columns:
            rule_of.setdefault((KINDS[r.kind].table, c), []).append(r)
    stamped = {s.column for s in STAMPED}
    free: dict[str, list[str]] = {}
    for col in columns:
        table, name = col["table"], col["name"]
        if table not in tables:
            continue
        if name in NAMED_COLUMNS[table]:
            rules = rule_of.get((table, name), [])
            # stamped, or made by an operator (a pseudonym, a prefix, a decoded IMb part, ...)
            assert name in stamped or (rules and all(r.how != "stored as sent" for r in rules)), (
                table,
                name,
            )
            continue
        rules = rule_of.get((table, name), [])
        assert rules and all(set(PII_KEYS) <= set(r.policy_keys) for r in rules), (
            f"{table}.{name}: neither made by a named operator nor free text under pii.*"
        )
        free.setdefault(table, []).append(name)
    for table, named in NAMED_COLUMNS.items():  # no stale names
        assert set(named) <= {c["name"] for c in columns if c["table"] == table}, table
    # behaviour: every free-text column of every table is redacted in place
    for table, names in free.items():
        row: dict[str, Any] = {n: {"k": "mail kim@example.com"} if n == "properties" else "call +1-555-123-4567" for n in names}  # fmt: skip
        out = detect_free_text(default_policy(), table, row)
        for n in names:
            assert "555-123" not in str(out[n]) and "kim@" not in str(out[n]), (table, n)
    for rc in ROLLUP_COLUMNS:
        source = ROLLUPS[rc.table].source
        for s in rc.sources:
            if (source, s) in {(c["table"], c["name"]) for c in columns}:
                assert (
                    s in NAMED_COLUMNS[source]
                    or s in free.get(source, [])
                    or not any(c["table"] == source and c["name"] == s for c in columns)
                ), (rc.table, rc.column)


async def test_policy_reject_refuses_the_record_naming_the_field(
    start: AppFactory, config: Config, tmp_path: Path
) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('version = 1\n[pii]\naction = "reject"\nfields = { os = "replace" }\n')
    tenant_dir = config.storage.path / "policies"
    tenant_dir.mkdir(parents=True)
    client = await start(policy_file=policy)
    r = await client.post(
        "/v1/events",
        json=[
            {"event": "ok"},
            {"event": "signup", "feature": "mail kim@example.com"},
            {"event": "e", "properties": {"tel": "+1 415 555 2671"}},
            {"event": "e", "url": "https://shop.example.com/u/kim@example.com"},
        ],
        headers=auth(),
    )
    assert r.status == 202
    body = await r.json()
    assert body["accepted"] == 1, body
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "feature"), (2, "properties.tel"), (3, "url"),
    ]  # fmt: skip
    assert body["errors"][0]["error"] == "holds personal data (email); the policy (pii) rejects it"
    text = await r.text()
    assert "kim@" not in text and "555" not in text
    r = await client.post(
        "/v1/devices", json=[{"device_id": "d1", "os": "call +1 415 555 2671"}], headers=auth()
    )
    assert (await r.json())["accepted"] == 1  # `os` is overridden to replace
    assert query(client, "SELECT os FROM device_info") == [{"os": "call {phone}"}]
    # an email in the device part of a user agent reaches access_log.device_model
    ua = hostile.UA.format("kim@example.com")
    r = await client.post("/v1/logs", json=[{"ip": "192.0.2.1", "user_agent": ua}], headers=auth())
    body = await r.json()
    assert body["accepted"] == 0 and body["errors"] == [
        {"index": 0, "field": "user_agent", "error": "holds personal data (email); the policy (pii) rejects it"}
    ]  # fmt: skip


async def test_tenant_override_of_the_pii_action(start: AppFactory, config: Config) -> None:
    tenant_dir = config.storage.path / "policies"
    tenant_dir.mkdir(parents=True)
    (tenant_dir / "acme.toml").write_text('[pii]\nfields = { model = "reject" }\n')
    client = await start()
    rec = {"device_id": "d", "model": "Pixel kim@example.com", "os": "kim@example.com"}
    body = await (await client.post("/v1/devices", json=[rec], headers=auth())).json()
    assert body["errors"] == [{"index": 0, "field": "model", "error": "holds personal data (email); the policy (pii) rejects it"}]  # fmt: skip
    body = await (await client.post("/v1/devices", json=[rec], headers=auth(OTHER_KEY))).json()
    assert body["accepted"] == 1
    assert query(client, "SELECT model, os FROM device_info") == [
        {"model": "Pixel {email}", "os": "{email}"}
    ]
