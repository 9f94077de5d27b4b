"""Late and backfilled records in reports: within the policy's late-data window a past day's
records get that day's visitor ids as if they had come on time; after the day's salt is gone,
they get the policy's fallback subject (or none), so backfilled traffic still shows, never in
groups of fewer than k subjects."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from collector.config import Config
from tests.conftest import (
    ANALYST_KEY,
    API_KEY,
    OTHER_KEY,
    OTHER_PRIVACY_KEY,
    AppFactory,
    auth,
    corpus_lines,
    query,
)

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def corpus_on(day: date) -> str:
    """The whole corpus dated `day` (times of day kept)."""
    stamp = f"{day.day:02d}/{MONTHS[day.month - 1]}/{day.year}"
    out = []
    for line in corpus_lines(shift_to_today=False):
        lb = line.index("[")
        out.append(line[: lb + 1] + stamp + line[lb + 12 :])
    return "\n".join(out) + "\n"


async def ingest(client: Any, text: str, key: str = API_KEY) -> None:
    lines = text.splitlines(keepends=True)
    for i in range(0, len(lines), 5000):
        body = io.BytesIO("".join(lines[i : i + 5000]).encode())
        r = await client.post(
            "/v1/logs", data=body, headers=auth(key, **{"Content-Type": "text/plain"})
        )
        assert r.status == 202, await r.text()


async def traffic(client: Any, day: date, key: str = ANALYST_KEY) -> list[dict[str, Any]]:
    r = await client.get(
        "/v1/reports/traffic",
        params={"from": day.isoformat(), "to": day.isoformat()},
        headers=auth(key),
    )
    assert r.status == 200
    rows: list[dict[str, Any]] = (await r.json())["rows"]
    return rows


def visitor_ids(client: Any, day: date) -> dict[str, int]:
    rows = query(
        client,
        f"SELECT startsWith(visitor_id, '~') AS coarse, uniqExact(visitor_id) AS n "
        f"FROM access_log WHERE toDate(time) = '{day}' AND visitor_id != '' GROUP BY coarse",
    )
    return {("coarse" if r["coarse"] else "daily"): int(r["n"]) for r in rows}


def group(row: dict[str, Any]) -> tuple[str, ...]:
    return (row["service"], row["host"], row["route"], row["status_class"])


def today() -> date:
    return datetime.now(UTC).date()


async def test_within_the_window_a_past_day_gets_visitor_ids_as_today(start: AppFactory) -> None:
    client = await start()
    now, yesterday = today(), today() - timedelta(days=1)  # within the shipped 48 h window
    await ingest(client, corpus_on(now))
    await ingest(client, corpus_on(yesterday))
    on_time, late = await traffic(client, now), await traffic(client, yesterday)
    assert len(on_time) > 100

    def groups(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], tuple[int, int]]:
        return {group(r): (r["requests"], r["visitors"]) for r in rows}

    assert groups(late) == groups(on_time)
    assert visitor_ids(client, yesterday) == visitor_ids(client, now)
    assert set(visitor_ids(client, now)) == {"daily"}


async def test_after_the_salt_is_gone_the_policy_fallback_counts_subjects(
    start: AppFactory, config: Config, tmp_path: Path
) -> None:
    overrides = tmp_path / "policies"
    overrides.mkdir()
    # globex chooses no fallback; acme keeps the shipped "coarse"
    (overrides / "globex.toml").write_text('[identifiers]\nlate_visitor_id = "none"\n')
    client = await start(policy_tenant_dir=overrides)
    now, gone = today(), today() - timedelta(days=3)  # past the 48 h window: no salt
    await ingest(client, corpus_on(now))
    await ingest(client, corpus_on(gone))
    on_time, late = await traffic(client, now), await traffic(client, gone)
    counted = visitor_ids(client, gone)
    assert set(counted) == {"coarse"} and counted["coarse"] <= visitor_ids(client, now)["daily"]
    assert late, "backfilled traffic shows in the report"
    # never more subjects than the on-time day's visitor ids in any shown group
    on_time_groups = {group(r): r["visitors"] for r in on_time}
    for row in late:
        assert row["visitors"] >= 5
        if group(row) in on_time_groups and row["route"] != "(other)":
            assert row["visitors"] <= on_time_groups[group(row)]
    assert sum(r["requests"] for r in late) <= 10_000
    # globex's policy has no fallback: its backfill is stored but counts no subject, so no
    # group reaches k (what every tenant saw before the fallback existed)
    await ingest(client, corpus_on(gone), OTHER_KEY)
    assert await traffic(client, gone, OTHER_PRIVACY_KEY) == []
    stored = query(client, "SELECT count() AS n FROM access_log WHERE tenant_id = 'globex'")
    assert stored == [{"n": 10_000}]
