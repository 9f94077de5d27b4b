"""Report query parameters at the edges of their SQL types: nothing wraps, clamps or guesses.

`k` is bound as UInt32 and the days as Date; a value outside either must be a 400 naming the
parameter, never a query that runs with another value (`k=4294967296` once became k=0 and showed
every single-subject group).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict
from yarl import URL

from anonymizer.policy import DEFAULT_MIN_K as MIN_K
from collector.config import Config
from collector.errors import BadRequest
from collector.params import UINT32_MAX, check_names, day, uint
from tests.conftest import ANALYST_KEY, AppFactory, auth
from tests.integration.test_openapi import check
from tests.integration.test_reports import TODAY, seed

K_REFUSED = [
    str(MIN_K - 1), "0", "-1", "-4294967291", str(UINT32_MAX + 1), str(2**64), str(2**64 + 5),
    "5.0", "5e0", "1e3", "0x10", "+5", " 5", "5 ", "5\n", "5_0", "\u0665", "\uff15", "",
    "nan", "inf", "x", "9" * 4000,
]  # fmt: skip
K_DETAIL = f"k: must be a whole number from {MIN_K} to {UINT32_MAX}"
DAY_REFUSED = [
    "1969-12-31", "2149-06-07", "9999-12-31", "0001-01-01", "20260101", "2026-W01-1",
    "2026-1-1", "2026-02-30", " 2026-01-01", "2026-01-01T00:00", "", "x" * 4000,
]  # fmt: skip


def q(name: str, raw: str) -> str:
    """`name=raw` with every byte of `raw` percent-encoded as a client would send it."""
    return f"{name}={quote(raw, safe='')}"


async def get(client: Any, query: str) -> tuple[int, Any]:
    url = URL(f"/v1/reports/traffic?{query}", encoded=True)
    r = await client.get(url, headers=auth(ANALYST_KEY))
    return r.status, await check(r, "/v1/reports/{name}", "get")


async def test_k_is_checked_to_the_width_of_uint32_and_the_minimum(start: AppFactory) -> None:
    client = await start()
    await seed(client)
    status, body = await get(client, f"k={MIN_K}")
    assert status == 200 and body["k"] == MIN_K and body["rows"]
    # the largest k the type holds: a valid question whose answer is "no group that big"
    status, body = await get(client, f"k={UINT32_MAX}")
    assert (status, body["k"], body["rows"]) == (200, UINT32_MAX, [])
    for raw in K_REFUSED:
        status, body = await get(client, q("k", raw))
        assert status == 400, (raw, body)
        assert body == {"error": "bad request", "detail": K_DETAIL}, raw  # nothing echoed


async def test_the_tenant_policy_sets_the_smallest_k(start: AppFactory, config: Config) -> None:
    tenant_dir = config.storage.path / "policies"
    tenant_dir.mkdir(parents=True)
    (tenant_dir / "acme.toml").write_text("[reports]\nmin_k = 12\n")
    client = await start()
    await seed(client)
    status, body = await get(client, "")
    assert status == 200 and body["k"] == 12  # the policy's minimum is also the default
    status, body = await get(client, "k=12")
    assert status == 200 and body["k"] == 12
    for raw in ("11", str(MIN_K), "2"):
        status, body = await get(client, f"k={raw}")
        assert status == 400, (raw, body)
        assert body["detail"] == f"k: must be a whole number from 12 to {UINT32_MAX}"


async def test_days_are_checked_to_the_range_of_date(start: AppFactory) -> None:
    client = await start()
    status, body = await get(client, "from=1970-01-01&to=1970-01-07")
    assert status == 200 and body["rows"] == []
    status, body = await get(client, "to=2149-06-06")
    assert status == 200 and body["from"] == "2149-05-31"
    status, body = await get(client, f"to={TODAY}&from={TODAY}")
    assert status == 200
    for raw in DAY_REFUSED:
        for name in ("from", "to"):
            status, body = await get(client, q(name, raw))
            assert status == 400, (name, raw, body)
            assert body["detail"].startswith(f"{name}: "), (name, raw, body)


async def test_repeated_and_unknown_parameters_are_refused(start: AppFactory) -> None:
    client = await start()
    for query, detail in [
        ("k=5&k=4294967296", "k: given more than once"),
        ("k=9&k=9", "k: given more than once"),
        (f"from={TODAY}&from={TODAY}", "from: given more than once"),
        ("kk=5", "unknown query parameter; this endpoint takes: from, k, to"),
        ("K=5", "unknown query parameter; this endpoint takes: from, k, to"),
        ("k=5;tenant=globex", "k: must be a whole number from 5 to 4294967295"),
    ]:
        status, body = await get(client, query)
        assert (status, body.get("detail")) == (400, detail), (query, body)


@given(st.text(max_size=30))
def test_uint_accepts_only_in_range_ascii_numbers(raw: str) -> None:
    query = MultiDict({"k": raw})
    try:
        value = uint(query, "k", MIN_K, MIN_K, UINT32_MAX)
    except BadRequest as e:
        assert e.detail.startswith("k: ")
        return
    assert MIN_K <= value <= UINT32_MAX and raw == str(value).rjust(len(raw), "0")


@given(st.text(max_size=30) | st.dates().map(str))
def test_day_accepts_only_iso_days_that_date_can_hold(raw: str) -> None:
    from datetime import date

    try:
        value = day(MultiDict({"to": raw}), "to", date(2000, 1, 1))
    except BadRequest as e:
        assert e.detail.startswith("to: ")
        return
    assert value.isoformat() == raw and 1970 <= value.year <= 2149


def test_check_names_with_no_parameters_allowed() -> None:
    check_names(MultiDict(), ())
    try:
        check_names(MultiDict({"x": "1"}), ())
    except BadRequest as e:
        assert e.detail == "unknown query parameter; this endpoint takes: none"
    else:
        raise AssertionError("an unknown parameter was accepted")


async def test_endpoints_without_parameters_refuse_any(start: AppFactory) -> None:
    """A parameter an endpoint does not take is a 400, never silently ignored (a client that
    thinks `?tenant=` or `?version=` does something must learn that it does not)."""
    from tests.conftest import PRIVACY_KEY

    client = await start()
    toml = auth(PRIVACY_KEY, **{"Content-Type": "application/toml"})
    calls = [
        (client.get, "/v1/policy", "get", {}),
        (client.get, "/v1/policy/audit", "get", {}),
        (client.put, "/v1/policy", "put", {"data": b"version = 2\n"}),
        (client.post, "/v1/subjects/export", "post", {"json": {"user_id": "u1"}}),
        (client.post, "/v1/subjects/delete", "post", {"json": {"user_id": "u1"}}),
    ]
    for call, path, method, kwargs in calls:
        r = await call(f"{path}?tenant=globex", headers=toml, **kwargs)
        assert r.status == 400, (path, await r.text())
        body = await check(r, path, method)
        assert body["detail"] == "unknown query parameter; this endpoint takes: none"
    view = await (await client.get("/v1/policy", headers=toml)).json()
    assert view["version"] == 1  # the refused PUT changed nothing
