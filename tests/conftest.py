"""Shared fixtures: real components only (chDB in a temp dir, real HTTP, real .mmdb files)."""

from __future__ import annotations

import calendar
import gzip
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import settings

from collector.app import create_app
from collector.appkeys import SINK
from collector.auth import hash_key
from collector.config import (
    ApiKeyConfig,
    BatchConfig,
    Config,
    EnrichConfig,
    SpoolConfig,
    StorageConfig,
    TenantConfig,
)
from tests.chserver import ChServer, running_chserver

# Speed is checked by benchmarks, never by a unit test: hypothesis's per-example deadline (200 ms)
# only made property tests fail when the machine was loaded.
settings.register_profile("collector", deadline=None)
settings.load_profile("collector")

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
ACCESS_LOG = CORPUS / "apache_combined_10k.log"
USER_AGENTS = CORPUS / "user_agents_uap_core.txt"
POLICY = REPO / "policy.toml"

API_KEY = "tck_test-key-acme-0123456789"
OTHER_KEY = "tck_test-key-globex-0123456789"
PRIVACY_KEY = "tck_test-key-acme-privacy-0123"
ANALYST_KEY = "tck_test-key-acme-analyst-0123"
ADMIN_KEY = "tck_test-key-acme-admin-012345"
OTHER_PRIVACY_KEY = "tck_test-key-globex-privacy-01"


def tenants() -> tuple[TenantConfig, ...]:
    def scoped(key: str, *scopes: str) -> ApiKeyConfig:
        return ApiKeyConfig(hash_key(key), frozenset(scopes))

    return (
        TenantConfig(
            id="acme",
            plan="standard",
            api_key_sha256=(hash_key(API_KEY),),
            keys=(
                scoped(PRIVACY_KEY, "privacy"),
                scoped(ANALYST_KEY, "analyst"),
                scoped(ADMIN_KEY, "admin"),
            ),
        ),
        TenantConfig(
            id="globex",
            plan="free",
            api_key_sha256=(hash_key(OTHER_KEY),),
            keys=(scoped(OTHER_PRIVACY_KEY, "privacy"),),
        ),
    )


def auth(key: str = API_KEY, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config(data_dir: Path) -> Config:
    """A service config on a fresh data dir; chDB opens one path per process, one test at a time."""
    return Config(
        storage=StorageConfig(path=data_dir),
        batch=BatchConfig(max_rows=5000, max_delay_ms=20),
        # these tests read the tables right after a 202: the rows are inserted before it (the
        # spool's own tests, tests/*/test_spool*.py and tests/redteam/test_crash.py, enable it)
        spool=SpoolConfig(enabled=False),
        enrich=EnrichConfig(),
        policy_file=POLICY,
        tenants=tenants(),
    )


AppFactory = Callable[..., Any]


@pytest.fixture
def start(aiohttp_client: Any, config: Config) -> AppFactory:
    """`await start(**config_overrides)` -> a client of a running app built by `create_app`."""

    async def _start(**overrides: Any) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = await aiohttp_client(
            create_app(replace(config, **overrides))
        )
        return client

    return _start


def query(client: TestClient[web.Request, web.Application], sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.app[SINK].query(sql)
    return rows


def corpus_lines(shift_to_today: bool = True) -> list[str]:
    """The access-log corpus, dates moved to the last few days (times of day kept) so the
    records are inside retention; the 2015 days map onto consecutive recent days."""
    lines = ACCESS_LOG.read_text().splitlines()
    if not shift_to_today:
        return lines
    today = time.gmtime()
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    out = []
    base_day = 17  # the corpus runs 17-20 May 2015
    for line in lines:
        lb = line.index("[")
        day = int(line[lb + 1 : lb + 3])
        t = time.gmtime(calendar.timegm(today) - (4 - (day - base_day)) * 86400)
        stamp = f"{t.tm_mday:02d}/{months[t.tm_mon - 1]}/{t.tm_year}"
        out.append(line[: lb + 1] + stamp + line[lb + 12 :])
    return out


def corpus_lines_today() -> list[str]:
    """The access-log corpus on today (UTC): every line moved onto today, its time of day scaled
    into the part of today already past, so the day's visitor salt exists and each (IP, user
    agent) is one visitor. Order and hours are kept."""
    now = time.time()
    midnight = now - now % 86400
    span = max(60.0, now - midnight - 60)
    out = []
    for line in ACCESS_LOG.read_text().splitlines():
        lb = line.index("[")
        hh, mm, ss = (int(x) for x in line[lb + 13 : lb + 21].split(":"))
        t = time.gmtime(midnight + (hh * 3600 + mm * 60 + ss) * span / 86400)
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S", t)
        out.append(line[: lb + 1] + stamp + line[lb + 21 :])
    return out


def gzipped(text: str) -> bytes:
    return gzip.compress(text.encode())


@pytest.fixture(scope="session")
def corpus() -> Iterator[list[str]]:
    yield corpus_lines()


def build_mmdb(path: Path, networks: dict[str, dict[str, Any]]) -> Path:
    """A small City-shaped MaxMind database, written with mmdb-writer."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    for cidr, record in networks.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def city(country: str, region: str = "", name: str = "") -> dict[str, Any]:
    rec: dict[str, Any] = {"country": {"iso_code": country, "names": {"en": country}}}
    if region:
        rec["subdivisions"] = [{"iso_code": region, "names": {"en": region}}]
    if name:
        rec["city"] = {"names": {"en": name}}
    return rec


@pytest.fixture
def geo_db(tmp_path: Path) -> Path:
    """1.2.3.0/24 is split between two countries: a lookup on the /24 would pick the wrong one."""
    return build_mmdb(
        tmp_path / "city.mmdb",
        {
            "1.2.3.0/25": city("DE", "BE", "Berlin"),
            "1.2.3.128/25": city("FR", "IDF", "Paris"),
            "2001:db8::/32": city("JP", "13", "Tokyo"),
        },
    )


@pytest.fixture(scope="session")
def chserver_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChServer]:
    """The test-only ClickHouse server (tests/chserver.py), one subprocess for the session."""
    with running_chserver(tmp_path_factory.mktemp("chserver")) as server:
        yield server


@pytest.fixture
def chserver(chserver_process: ChServer) -> Iterator[ChServer]:
    """The test server with no fault and no users; each test uses a database of its own."""
    chserver_process.fault("none")
    chserver_process.set_users({})
    yield chserver_process
    chserver_process.fault("none")
    chserver_process.set_users({})


@pytest.fixture
def server_storage(chserver: ChServer, data_dir: Path) -> StorageConfig:
    """`[storage] engine = "clickhouse"` on the test server, in a fresh database."""
    return StorageConfig(
        engine="clickhouse",
        path=data_dir,
        url=chserver.url,
        database=f"t_{uuid.uuid4().hex[:12]}",
        timeout_s=5,
    )
