"""Service configuration: one TOML file, parsed into frozen dataclasses and validated once.

Unknown keys are errors, so a misspelt setting fails at start instead of silently taking a default.
Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from anonymizer.toml_reader import TomlTable
from collector.errors import ConfigError
from collector.forwarded import DEFAULT_TRUSTED, TrustedProxies
from collector.log_format import FormatError, compile_apache, compile_nginx
from collector.storage import check_engine

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SERVER_URL = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")
MIB = 1024 * 1024
KEY_NAME = re.compile(r"^[A-Za-z0-9 ._@(),'-]{0,64}$")  # shown in the audit history


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 10 * MIB
    max_decompressed_bytes: int = 64 * MIB
    max_records: int = 10_000
    shutdown_timeout_s: int = 30
    tls_cert: Path | None = None  # PEM certificate chain; with tls_key, the collector serves HTTPS
    tls_key: Path | None = None
    allow_plaintext: bool = False  # plain HTTP off loopback: only behind a TLS-terminating proxy
    # ingest requests processed at once, beyond: 503. Bounds memory: each holds its body (at most
    # max_decompressed_bytes), so 64 x 64 MiB in the worst case, a few MiB in practice
    max_inflight_requests: int = 64
    # SHA-256 of the operator's token that sees every tenant's /metrics series ("": none)
    metrics_token_sha256: str = ""
    # ingest requests of one tenant in flight at once (0: a quarter of max_inflight_requests, at
    # least 1): one tenant's slow bodies can never take every slot
    max_inflight_per_tenant: int = 0
    # open connections (0: the open-file limit minus a reserve for files and the engine); at the
    # cap the least recently active idle connection is closed, or the new one is refused
    max_connections: int = 0
    keepalive_timeout_s: int = 30  # an idle connection is closed after this long
    header_read_timeout_s: int = 10  # a request head must arrive whole within this (slowloris)
    max_line_size: int = 8190  # request line, bytes (414 beyond)
    max_field_size: int = 8190  # one header field, name and value, bytes (431 beyond)
    max_headers: int = 64  # header fields per request (431 beyond)
    max_head_bytes: int = 65536  # request line and headers together, bytes (431 beyond)

    @property
    def inflight_per_tenant(self) -> int:
        return self.max_inflight_per_tenant or max(1, self.max_inflight_requests // 4)

    # a body not received whole within this many seconds is answered 408, freeing its slot
    body_read_timeout_s: int = 30
    # POST /v1/admin/sql (`collector sql` while the service runs): result rows and seconds, at most
    admin_sql_max_rows: int = 10_000
    admin_sql_timeout_s: int = 10


@dataclass(frozen=True, slots=True)
class StorageConfig:
    engine: str = "embedded"
    path: Path = Path("data")  # keys, salts, idempotency, scratch; the embedded engine's data
    database: str = "telemetry"
    # engine = "clickhouse": a ClickHouse server over HTTP(S) (collector/sink_clickhouse.py)
    url: str = ""  # http://host:8123 or https://host:8443
    user: str = "default"
    password: str = field(default="", repr=False)
    password_file: Path | None = None  # read at connect; its first line is the password
    ca_file: Path | None = None  # PEM CA bundle for an https url (default: the system's)
    verify: bool = True  # check the server's certificate (https)
    cluster: str = ""  # ON CLUSTER DDL: Replicated local tables under Distributed ones
    timeout_s: int = 30  # one request's answer; connecting gets min(timeout_s, 10)
    # pseudonym keys and visitor salts; collectors sharing a ClickHouse server share these
    # folders (docs/security.md). None: `<path>/keys`, `<path>/salts`
    keys_dir: Path | None = None
    salts_dir: Path | None = None
    # a secret file (>= 32 bytes): key and salt files are sealed under it (collector/sealing.py)
    master_key_file: Path | None = None
    # the engine's threads (embedded: its inserts and merges) run at this nice value, below the
    # ingest path (collector/priority.py); 0 = the same priority
    engine_nice: int = 10

    @property
    def chdb_path(self) -> Path:
        return self.path / "chdb"

    @property
    def keys_path(self) -> Path:
        return self.keys_dir or self.path / "keys"

    @property
    def salts_path(self) -> Path:
        return self.salts_dir or self.path / "salts"

    @property
    def tmp_path(self) -> Path:
        return self.path / "tmp"


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """Flush at `max_rows` or `max_delay_ms` after the first pending row, whichever first."""

    max_rows: int = 5_000
    max_delay_ms: int = 200
    max_pending_rows: int = 200_000
    insert_retries: int = 3


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """The delivery path (collector/spool.py, collector/shipper.py): a 202 means the rows are
    fsync'd in `<storage.path>/spool`; the shipper inserts them. `enabled = false`: the 202
    waits for the insert itself (the `[batch]` path)."""

    enabled: bool = True
    max_bytes: int = 1024 * MIB  # high-water mark: above it ingest answers 503 + Retry-After
    segment_bytes: int = 32 * MIB  # a segment is sealed (and shipped) at this size...
    segment_age_ms: int = 1000  # ...or this long after its first record
    commit_window_ms: int = 1  # requests arriving within this join one write + fsync
    retry_max_s: int = 30  # cap of the shipper's exponential backoff (full jitter)
    drain_timeout_s: int = 10  # on SIGTERM, ship for at most this long; the rest at next start
    subject_drain_timeout_s: int = 30  # subject export/delete first ship what waits (else 503)


@dataclass(frozen=True, slots=True)
class IdempotencyConfig:
    """Bounds of the Idempotency-Key memory (and of its file, which holds the same entries).
    At either cap the tenant's oldest key is forgotten: its retry would be ingested again."""

    max_keys_per_tenant: int = 100_000
    max_bytes_per_tenant: int = 32 * MIB
    # the file is rewritten with the live keys when over max(this, 2 x their bytes)
    compact_min_bytes: int = MIB


@dataclass(frozen=True, slots=True)
class EnrichConfig:
    geoip_database: Path | None = None
    geoip_cache_size: int = 65_536  # answers kept by address digest (collector/enrich.py)
    user_agent_cache_size: int = 16_384


@dataclass(frozen=True, slots=True)
class ApiKeyConfig:
    """One API key (as its SHA-256) and what it may do: ingest, analyst, privacy, admin."""

    sha256: str
    scopes: frozenset[str] = frozenset({"ingest"})
    name: str = ""  # who holds the key (audit history, dashboard); "": the key id stands in


SCOPES = frozenset({"ingest", "analyst", "privacy", "admin", "metrics"})


@dataclass(frozen=True, slots=True)
class TenantConfig:
    id: str
    plan: str = ""
    api_key_sha256: tuple[str, ...] = ()  # keys with the ingest scope
    keys: tuple[ApiKeyConfig, ...] = ()  # keys with explicit scopes
    max_records_per_second: int = 0  # 0: no limit; else 429 beyond it (bursts of 2 s)
    # text/plain access logs in this declared format instead of detected (at most one of the two)
    nginx_log_format: str = ""
    apache_log_format: str = ""

    def all_keys(self) -> tuple[ApiKeyConfig, ...]:
        return tuple(ApiKeyConfig(h) for h in self.api_key_sha256) + self.keys


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """`trusted_proxies`: CIDRs of the proxies whose forwarded chains (X-Forwarded-For,
    Forwarded) in log lines are believed; the client is the first untrusted address from the
    right (collector/forwarded.py)."""

    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """The analysts' web page (`/dashboard`): a sign-in session lives this long at most."""

    session_ttl_s: int = 8 * 3600


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    enrich: EnrichConfig = field(default_factory=EnrichConfig)
    idempotency: IdempotencyConfig = field(default_factory=IdempotencyConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    policy_file: Path | None = None
    policy_tenant_dir: Path | None = None  # <tenant>.toml overrides; default <data>/policies
    tenants: tuple[TenantConfig, ...] = ()
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)

    @property
    def tenant_policy_dir(self) -> Path:
        return self.policy_tenant_dir or self.storage.path / "policies"


def load_config(path: Path) -> Config:
    """Read and validate a config file."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from e
    return parse_config(text, base=path.parent)


def _config_error(dotted: str, reason: str) -> ConfigError:
    return ConfigError(f"{dotted}: {reason}")


def parse_config(text: str, base: Path) -> Config:
    """Validate a config document; relative paths are resolved against `base`. Defaults are the
    dataclasses' own."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config is not valid TOML: {e}") from e
    r = TomlTable(doc, "", _config_error)
    r.check_known(
        {
            "server",
            "storage",
            "batch",
            "geoip",
            "user_agent",
            "policy",
            "tenants",
            "idempotency",
            "ingest",
            "spool",
            "dashboard",
        },
        list_known=True,
    )
    server = r.table("server")
    storage = r.table("storage")
    batch = r.table("batch")
    geoip = r.table("geoip")
    ua = r.table("user_agent")
    policy = r.table("policy")
    idem = r.table("idempotency")
    idem.check_known(IdempotencyConfig.__slots__, list_known=True)
    i = IdempotencyConfig()
    idempotency_cfg = IdempotencyConfig(
        max_keys_per_tenant=idem.integer("max_keys_per_tenant", i.max_keys_per_tenant, 1, 10**8),
        max_bytes_per_tenant=idem.integer(
            "max_bytes_per_tenant", i.max_bytes_per_tenant, 4096, 2**40
        ),
        compact_min_bytes=idem.integer("compact_min_bytes", i.compact_min_bytes, 4096, 2**40),
    )
    server.check_known(ServerConfig.__slots__, list_known=True)
    storage.check_known(StorageConfig.__slots__, list_known=True)
    batch.check_known(BatchConfig.__slots__, list_known=True)
    geoip.check_known({"database", "cache_size"}, list_known=True)
    ua.check_known({"cache_size"}, list_known=True)
    policy.check_known({"file", "tenant_dir"}, list_known=True)

    d = ServerConfig()
    server_cfg = ServerConfig(
        host=server.string("host", d.host),
        port=server.integer("port", d.port, 0, 65535),
        max_body_bytes=server.integer("max_body_bytes", d.max_body_bytes, 1, 2**40),
        max_decompressed_bytes=server.integer(
            "max_decompressed_bytes", d.max_decompressed_bytes, 1, 2**40
        ),
        max_records=server.integer("max_records", d.max_records, 1, 10**7),
        shutdown_timeout_s=server.integer("shutdown_timeout_s", d.shutdown_timeout_s, 1, 3600),
        tls_cert=_optional_path(base, server.string("tls_cert", ""), d.tls_cert),
        tls_key=_optional_path(base, server.string("tls_key", ""), d.tls_key),
        allow_plaintext=server.boolean("allow_plaintext", d.allow_plaintext),
        max_inflight_requests=server.integer(
            "max_inflight_requests", d.max_inflight_requests, 1, 100_000
        ),
        metrics_token_sha256=server.string("metrics_token_sha256", d.metrics_token_sha256),
        max_inflight_per_tenant=server.integer(
            "max_inflight_per_tenant", d.max_inflight_per_tenant, 0, 100_000
        ),
        max_connections=server.integer("max_connections", d.max_connections, 0, 10**7),
        keepalive_timeout_s=server.integer("keepalive_timeout_s", d.keepalive_timeout_s, 1, 3600),
        header_read_timeout_s=server.integer(
            "header_read_timeout_s", d.header_read_timeout_s, 1, 3600
        ),
        max_line_size=server.integer("max_line_size", d.max_line_size, 256, 1 * MIB),
        max_field_size=server.integer("max_field_size", d.max_field_size, 256, 1 * MIB),
        max_headers=server.integer("max_headers", d.max_headers, 8, 10_000),
        max_head_bytes=server.integer("max_head_bytes", d.max_head_bytes, 1024, 16 * MIB),
        body_read_timeout_s=server.integer("body_read_timeout_s", d.body_read_timeout_s, 1, 3600),
        admin_sql_max_rows=server.integer("admin_sql_max_rows", d.admin_sql_max_rows, 1, 10**7),
        admin_sql_timeout_s=server.integer("admin_sql_timeout_s", d.admin_sql_timeout_s, 1, 3600),
    )
    if server_cfg.metrics_token_sha256 and not SHA256_HEX.match(server_cfg.metrics_token_sha256):
        raise ConfigError("server.metrics_token_sha256: must be 64 lower-case hex digits")
    if server_cfg.max_inflight_per_tenant > server_cfg.max_inflight_requests:
        raise ConfigError("server.max_inflight_per_tenant: must not exceed max_inflight_requests")
    if (server_cfg.tls_cert is None) != (server_cfg.tls_key is None):
        raise ConfigError("server.tls_cert and server.tls_key: set both, or neither")
    s = StorageConfig()
    engine = check_engine(storage.string("engine", s.engine))
    database = storage.string("database", s.database)
    if not DATABASE.match(database):
        raise ConfigError("storage.database: must be letters, digits and _ (max 63)")
    storage_cfg = _server_storage(
        storage,
        base,
        StorageConfig(
            engine=engine,
            path=_path(base, storage.string("path", str(s.path))),
            database=database,
            keys_dir=_optional_path(base, storage.string("keys_dir", ""), s.keys_dir),
            salts_dir=_optional_path(base, storage.string("salts_dir", ""), s.salts_dir),
            master_key_file=_optional_path(
                base, storage.string("master_key_file", ""), s.master_key_file
            ),
            engine_nice=storage.integer("engine_nice", s.engine_nice, 0, 19),
        ),
    )
    b = BatchConfig()
    batch_cfg = BatchConfig(
        max_rows=batch.integer("max_rows", b.max_rows, 1, 10**7),
        max_delay_ms=batch.integer("max_delay_ms", b.max_delay_ms, 0, 60_000),
        max_pending_rows=batch.integer("max_pending_rows", b.max_pending_rows, 1, 10**9),
        insert_retries=batch.integer("insert_retries", b.insert_retries, 0, 100),
    )
    en = EnrichConfig()
    enrich_cfg = EnrichConfig(
        geoip_database=_optional_path(base, geoip.string("database", ""), en.geoip_database),
        geoip_cache_size=geoip.integer("cache_size", en.geoip_cache_size, 0, 10**7),
        user_agent_cache_size=ua.integer("cache_size", en.user_agent_cache_size, 0, 10**7),
    )
    dash = r.table("dashboard")
    dash.check_known(DashboardConfig.__slots__, list_known=True)
    dashboard_cfg = DashboardConfig(
        session_ttl_s=dash.integer("session_ttl_s", DashboardConfig().session_ttl_s, 60, 30 * 86400)
    )
    c = Config()
    return Config(
        spool=_spool(r.table("spool")),
        server=server_cfg,
        storage=storage_cfg,
        batch=batch_cfg,
        enrich=enrich_cfg,
        idempotency=idempotency_cfg,
        ingest=_ingest(r.table("ingest")),
        policy_file=_optional_path(base, policy.string("file", ""), c.policy_file),
        policy_tenant_dir=_optional_path(
            base, policy.string("tenant_dir", ""), c.policy_tenant_dir
        ),
        tenants=_tenants(r),
        dashboard=dashboard_cfg,
    )


def _server_storage(t: TomlTable, base: Path, cfg: StorageConfig) -> StorageConfig:
    """The server engine's keys: checked here, so a bad url or a missing password file fails at
    start, not at the first insert."""
    d = StorageConfig()
    out = replace(
        cfg,
        url=t.string("url", d.url).rstrip("/"),
        user=t.string("user", d.user),
        password=t.string("password", d.password),
        password_file=_optional_path(base, t.string("password_file", ""), d.password_file),
        ca_file=_optional_path(base, t.string("ca_file", ""), d.ca_file),
        verify=t.boolean("verify", d.verify),
        cluster=t.string("cluster", d.cluster),
        timeout_s=t.integer("timeout_s", d.timeout_s, 1, 3600),
    )
    if out.engine != "clickhouse":
        if out.url or out.cluster:
            raise ConfigError('storage.url, storage.cluster: only with engine = "clickhouse"')
        return out
    if not SERVER_URL.match(out.url):
        raise ConfigError("storage.url: must be http://host[:port] or https://host[:port]")
    if out.password and out.password_file:
        raise ConfigError("storage.password and storage.password_file: set one, not both")
    if out.password_file is not None and not out.password_file.is_file():
        raise ConfigError(f"storage.password_file: no such file {out.password_file}")
    if out.ca_file is not None and not out.ca_file.is_file():
        raise ConfigError(f"storage.ca_file: no such file {out.ca_file}")
    if out.cluster and not DATABASE.match(out.cluster):
        raise ConfigError("storage.cluster: must be letters, digits and _ (max 63)")
    return out


def _ingest(t: TomlTable) -> IngestConfig:
    t.check_known(IngestConfig.__slots__, list_known=True)
    proxies = tuple(t.str_list("trusted_proxies", IngestConfig().trusted_proxies))
    try:
        TrustedProxies.parse(proxies)
    except ValueError as e:
        raise ConfigError(f"ingest.trusted_proxies: {e}") from None
    return IngestConfig(trusted_proxies=proxies)


def _spool(t: TomlTable) -> SpoolConfig:
    t.check_known(SpoolConfig.__slots__, list_known=True)
    d = SpoolConfig()
    return SpoolConfig(
        enabled=t.boolean("enabled", d.enabled),
        max_bytes=t.integer("max_bytes", d.max_bytes, 64 * 1024, 2**50),
        segment_bytes=t.integer("segment_bytes", d.segment_bytes, 4096, 1024 * MIB),
        segment_age_ms=t.integer("segment_age_ms", d.segment_age_ms, 1, 3_600_000),
        commit_window_ms=t.integer("commit_window_ms", d.commit_window_ms, 0, 1000),
        retry_max_s=t.integer("retry_max_s", d.retry_max_s, 1, 3600),
        drain_timeout_s=t.integer("drain_timeout_s", d.drain_timeout_s, 0, 3600),
        subject_drain_timeout_s=t.integer(
            "subject_drain_timeout_s", d.subject_drain_timeout_s, 1, 3600
        ),
    )


def _tenants(r: TomlTable) -> tuple[TenantConfig, ...]:
    raw = r.get("tenants", [])
    if not isinstance(raw, list):
        raise ConfigError("tenants: must be an array of tables ([[tenants]])")
    out: list[TenantConfig] = []
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    for i, raw_tenant in enumerate(raw):
        t = r.at(f"tenants[{i}]", raw_tenant)
        t.check_known(
            {
                "id",
                "plan",
                "api_key_sha256",
                "keys",
                "max_records_per_second",
                "nginx_log_format",
                "apache_log_format",
            },
            list_known=True,
        )
        tid = t.string("id", "")
        if not TENANT_ID.match(tid):
            raise t.fail("id", f"must match {TENANT_ID.pattern}")
        if tid in seen_ids:
            raise t.fail("id", f"duplicate tenant id {tid!r}")
        seen_ids.add(tid)
        keys = t.str_list("api_key_sha256", ())
        for j, k in enumerate(keys):
            _check_key_hash(k, t.dotted(f"api_key_sha256[{j}]"), seen_keys)
        scoped = []
        raw_scoped = t.get("keys", [])
        if not isinstance(raw_scoped, list):
            raise t.fail("keys", "must be an array of tables ([[tenants.keys]])")
        for j, raw_key in enumerate(raw_scoped):
            key = t.at(t.dotted(f"keys[{j}]"), raw_key)
            key.check_known({"sha256", "scopes", "name"}, list_known=True)
            digest = key.string("sha256", "")
            _check_key_hash(digest, key.dotted("sha256"), seen_keys)
            scopes = key.get("scopes", sorted(ApiKeyConfig("").scopes))
            if not isinstance(scopes, list) or not scopes or not set(scopes) <= SCOPES:
                raise key.fail("scopes", f"a non-empty list of {', '.join(sorted(SCOPES))}")
            name = key.string("name", "")
            if not KEY_NAME.match(name):
                raise key.fail("name", f"must match {KEY_NAME.pattern}")
            scoped.append(ApiKeyConfig(digest, frozenset(scopes), name))
        d = TenantConfig("")
        out.append(
            TenantConfig(
                id=tid,
                plan=t.string("plan", d.plan),
                api_key_sha256=tuple(keys),
                keys=tuple(scoped),
                max_records_per_second=t.integer(
                    "max_records_per_second", d.max_records_per_second, 0, 10**9
                ),
                **_declared_formats(t),
            )
        )
    return tuple(out)


def _declared_formats(t: TomlTable) -> dict[str, str]:
    """A tenant's declared text log format, compiled once here so a bad one fails at start."""
    nginx = t.string("nginx_log_format", "")
    apache = t.string("apache_log_format", "")
    if nginx and apache:
        raise t.fail("nginx_log_format", "set nginx_log_format or apache_log_format, not both")
    try:
        if nginx:
            compile_nginx(nginx)
        if apache:
            compile_apache(apache)
    except FormatError as e:
        raise t.fail("nginx_log_format" if nginx else "apache_log_format", str(e)) from None
    return {"nginx_log_format": nginx, "apache_log_format": apache}


def _check_key_hash(digest: str, where: str, seen: set[str]) -> None:
    if not SHA256_HEX.match(digest):
        raise ConfigError(f"{where}: must be 64 lower-case hex digits (a SHA-256)")
    if digest in seen:
        raise ConfigError(f"{where}: the same key is listed twice")
    seen.add(digest)


def _optional_path(base: Path, value: str, default: Path | None) -> Path | None:
    """`value` resolved against `base`; "" (the key absent, or set empty): `default`."""
    return _path(base, value) if value else default


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def check_transport(host: str, server: ServerConfig) -> None:
    """Encryption in transit is a promise: plain HTTP is served on loopback only, unless the
    operator says a proxy in front terminates TLS (`allow_plaintext = true`)."""
    if server.tls_cert is None and not is_loopback(host) and not server.allow_plaintext:
        raise ConfigError(
            f"server: plain HTTP on {host} would carry personal data unencrypted: set "
            "server.tls_cert and server.tls_key, or allow_plaintext = true when a proxy in front "
            "terminates TLS"
        )


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()
