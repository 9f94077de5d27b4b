"""A ClickHouse server (or cluster) over HTTP(S), through clickhouse-connect: `[storage] engine =
"clickhouse"`.

The same five calls as the embedded engine (`collector.sink.Sink`), on one worker thread:
- `insert` sends the rows as they are (JSONEachRow, LZ4-compressed) with `raw_insert`: no
  decoding into Python values and no metadata query; `insert_deduplication_token` makes a retry of
  a batch whose answer was lost a no-op (the tables keep a deduplication window).
- `migrate` runs the `sql/` files with the embedded engine's migrator; with `cluster` set, as the
  `ON CLUSTER` DDL `collector.cluster_ddl` generates from them.
- `query` returns rows as JSONEachRow decodes them, the embedded engine's shape; `{name:Type}`
  parameters are bound by the server.

The client connects lazily: the service starts and listens while the server is unreachable, and
every call tries again. Errors are translated here, once: a server that cannot be reached, times
out, drops the connection or reports a transient condition (overload, too many parts, a keeper
away) is `SinkUnavailable` (503, retried, the schema migrated once it can); any other server error
(a schema or syntax error, a refused grant) is a `SinkError` naming the ClickHouse code and name.
Messages never carry the server's address or the password.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import lz4.frame
import orjson

from collector.errors import SinkError, SinkUnavailable
from collector.migrate import SQL_DIR, Migration, apply_migrations

if TYPE_CHECKING:
    from collector.config import StorageConfig

# clickhouse-connect (and urllib3 under it, used by nothing else here) log transport failures as
# warnings with a traceback and the server's address; the collector reports each failure itself,
# by kind (collector.failures.describe)
log = logging.getLogger(__name__)
logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

_IDENT_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
# ClickHouse error codes that say "not now" rather than "never": retried like a lost connection
TRANSIENT_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (a replica that lost its keeper session)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        225,  # NO_ZOOKEEPER
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        999,  # KEEPER_EXCEPTION
    }
)


# a proxy or load balancer in front answering for a server that is away
_GATEWAY = re.compile(r"HTTP status (502|503|504)\b")
# rows as the embedded engine gives them: JSONEachRow, 64-bit integers as JSON numbers (a server's
# default quotes them; chDB's does not)
_QUERY_SETTINGS = {"default_format": "JSONEachRow", "output_format_json_quote_64bit_integers": 0}


def _ident(name: str) -> str:
    if not name or not set(name) <= _IDENT_OK:
        raise SinkError("invalid identifier")
    return name


def _caused_by(e: BaseException, kind: type[BaseException]) -> bool:
    """Is `kind` anywhere in the chain of causes (urllib3 wraps what the socket raised)?"""
    seen: set[int] = set()
    stack: list[BaseException | None] = [e]
    while stack:
        x = stack.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, kind):
            return True
        stack += [x.__cause__, x.__context__, *(a for a in x.args if isinstance(a, BaseException))]
        reason = getattr(x, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False


def _translate(e: Exception) -> SinkError:
    """A clickhouse-connect exception as ours (the boundary)."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    code = getattr(e, "code", None)
    if _caused_by(e, ssl.SSLError):  # not transient: the CA, `verify` or the url is wrong
        return SinkError(
            "TLS to the ClickHouse server failed (certificate not trusted? check "
            "storage.ca_file, storage.verify and the url's host name)"
        )
    if isinstance(e, OperationalError) and code is None:
        # refused, timed out, reset, dropped mid-answer: the server is (for now) out of reach
        return SinkUnavailable("ClickHouse server unreachable: connection failed or timed out")
    text = str(e)
    if "DB::Exception" in text:
        text = "Code: " + text.split("Code: ", 1)[-1] if "Code: " in text else text
    text = text.split("\n", 1)[0].split(" (for url ", 1)[0][:500]
    if code in TRANSIENT_CODES or (code is None and _GATEWAY.search(text)):
        return SinkUnavailable(text)
    if isinstance(e, DatabaseError):
        return SinkError(text)
    return SinkError(f"ClickHouse client error ({type(e).__name__})")


def connect(storage: StorageConfig, *, database: str | None = None) -> Any:
    """A clickhouse-connect client for `[storage]` (url, user, password or password_file, TLS,
    timeout), for the sink and for any command that talks to the server itself (grants, say).
    Connecting queries the server: raises `SinkUnavailable` / `SinkError`."""
    import clickhouse_connect

    url = urlsplit(storage.url)
    secure = url.scheme == "https"
    if secure and not storage.verify:
        # the operator's choice, said once per connect here instead of a warning per request
        from urllib3.exceptions import InsecureRequestWarning

        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        log.warning("storage.verify = false: the ClickHouse server's certificate is not checked")
    password = storage.password
    if storage.password_file is not None:  # read at each connect: a rotated password is used
        try:
            password = (storage.password_file.read_text().splitlines() or [""])[0]
        except OSError as e:
            raise SinkError(f"storage.password_file: cannot read {storage.password_file}") from e
    try:
        return clickhouse_connect.get_client(
            host=url.hostname,
            port=url.port or (8443 if secure else 8123),
            interface="https" if secure else "http",
            username=storage.user,
            password=password,
            database=database,
            secure=secure,
            verify=storage.verify,
            ca_cert=str(storage.ca_file) if storage.ca_file else None,
            connect_timeout=min(storage.timeout_s, 10),
            send_receive_timeout=storage.timeout_s,
            compress="lz4",
            query_retries=0,
            autogenerate_session_id=False,  # no server session: calls never lock each other out
            show_clickhouse_errors="scrub",  # the SQL error and its name, no URL
            client_name="telemetry-collector",
        )
    except Exception as e:
        raise _translate(e) from None


class ClickHouseSink:
    def __init__(self, storage: StorageConfig, sql_dir: Path = SQL_DIR) -> None:
        self.storage = storage
        self.database = _ident(storage.database)
        self.cluster = storage.cluster
        self.sql_dir = sql_dir
        self._lock = threading.Lock()
        self._client: Any = None
        self._closed = False
        # on a cluster the Distributed tables take inserts: wait until the shards have them, so
        # a 202 means stored and a failure is seen here
        self._insert_settings = {"distributed_foreground_insert": 1} if self.cluster else {}

    def _connected(self) -> Any:
        if self._closed:
            raise SinkUnavailable("the ClickHouse sink is closed")
        if self._client is None:
            client = connect(self.storage)
            client.database = self.database
            self._client = client
        return self._client

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            client = self._connected()
            try:
                return getattr(client, fn)(*args, **kwargs)
            except Exception as e:
                raise _translate(e) from None

    def execute(self, sql: str) -> None:
        self._call("command", sql)

    def migrate(self) -> list[str]:
        on = f" ON CLUSTER {_ident(self.cluster)}" if self.cluster else ""
        self._call(
            "command", f"CREATE DATABASE IF NOT EXISTS {self.database}{on}", use_database=False
        )

        def applied() -> set[int]:
            return {int(r["version"]) for r in self.query("SELECT version FROM schema_migrations")}

        def record(m: Migration) -> None:
            self._call(
                "command",
                "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
                parameters={"v": m.version, "n": m.name},
                settings=self._insert_settings,
            )

        return apply_migrations(self.execute, applied, record, self.sql_dir, self.cluster)

    def insert(self, table: str, rows: bytes, token: str) -> None:
        self._call(
            "raw_insert",
            _ident(table),
            None,
            lz4.frame.compress(rows),
            settings={
                "insert_deduplication_token": _ident(token),
                # a retried batch the table drops must not count again in the rollup views
                "deduplicate_blocks_in_dependent_materialized_views": 1,
                **self._insert_settings,
            },
            fmt="JSONEachRow",
            compression="lz4",
        )

    def insert_file(self, table: str, path: Path, token: str) -> None:
        self.insert(table, path.read_bytes(), token)  # compressed whole: one body per segment

    def probe(self, table: str) -> None:
        """Raises unless an insert into `table` can work now: the server answers and takes an
        insert of no rows into the table (it exists, the user may write it)."""
        self._call("raw_insert", _ident(table), None, b"", fmt="JSONEachRow")

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out: bytes = self._call("raw_query", sql, parameters=params, settings=_QUERY_SETTINGS)
        return [orjson.loads(line) for line in out.splitlines() if line]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()
