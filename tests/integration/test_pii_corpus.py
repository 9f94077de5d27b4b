"""The hostile corpus (tests/hostile.py) through every endpoint, then: no raw value, decoded
form, card or phone digits or embedded IPv4 in any column of any table (rollups included), and
`scan-pii` finds nothing."""

from collections import Counter
from typing import Any

from anonymizer.policy import parse_policy
from collector.appkeys import SINK
from collector.scan_pii import scan
from tests import hostile
from tests.conftest import POLICY, AppFactory, auth, query


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
