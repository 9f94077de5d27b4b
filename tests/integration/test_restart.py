"""Stop and start on the same data dir: rows stay, pseudonyms stay linkable within the epoch."""

from typing import Any

from collector.app import create_app
from collector.config import Config
from collector.migrate import discover
from tests.conftest import auth, query


async def test_restart_keeps_rows_and_pseudonyms(aiohttp_client: Any, config: Config) -> None:
    first = await aiohttp_client(create_app(config))
    r = await first.post(
        "/v1/logs", json=[{"ip": "192.0.2.1", "user_id": "alice", "path": "/1"}], headers=auth()
    )
    assert r.status == 202
    await first.close()  # clean stop: flush, close the engine

    second = await aiohttp_client(create_app(config))
    r = await second.post(
        "/v1/logs", json=[{"ip": "192.0.2.2", "user_id": "alice", "path": "/2"}], headers=auth()
    )
    assert r.status == 202
    rows = query(second, "SELECT path, user_pseudonym, key_epoch FROM access_log ORDER BY path")
    assert [r["path"] for r in rows] == ["/1", "/2"]
    assert rows[0]["user_pseudonym"] == rows[1]["user_pseudonym"] != ""
    assert rows[0]["key_epoch"] == rows[1]["key_epoch"]
    migrations = query(second, "SELECT count() AS n FROM schema_migrations")
    assert migrations == [{"n": len(discover())}]  # each applied once, not again on restart
