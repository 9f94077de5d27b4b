"""Service configuration: one TOML file, parsed into frozen dataclasses and validated once.

Unknown keys are errors, so a misspelt setting fails at start instead of silently taking a default.
Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.errors import ConfigError
from collector.storage import check_engine

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MIB = 1024 * 1024


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


@dataclass(frozen=True, slots=True)
class StorageConfig:
    engine: str = "embedded"
    path: Path = Path("data")
    database: str = "telemetry"

    @property
    def chdb_path(self) -> Path:
        return self.path / "chdb"

    @property
    def keys_path(self) -> Path:
        return self.path / "keys"

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
    user_agent_cache_size: int = 16_384


@dataclass(frozen=True, slots=True)
class ApiKeyConfig:
    """One API key (as its SHA-256) and what it may do: ingest, analyst, privacy, admin."""

    sha256: str
    scopes: frozenset[str] = frozenset({"ingest"})


SCOPES = frozenset({"ingest", "analyst", "privacy", "admin", "metrics"})


@dataclass(frozen=True, slots=True)
class TenantConfig:
    id: str
    plan: str = ""
    api_key_sha256: tuple[str, ...] = ()  # keys with the ingest scope
    keys: tuple[ApiKeyConfig, ...] = ()  # keys with explicit scopes
    max_records_per_second: int = 0  # 0: no limit; else 429 beyond it (bursts of 2 s)

    def all_keys(self) -> tuple[ApiKeyConfig, ...]:
        return tuple(ApiKeyConfig(h) for h in self.api_key_sha256) + self.keys


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    enrich: EnrichConfig = field(default_factory=EnrichConfig)
    idempotency: IdempotencyConfig = field(default_factory=IdempotencyConfig)
    policy_file: Path | None = None
    policy_tenant_dir: Path | None = None  # <tenant>.toml overrides; default <data>/policies
    tenants: tuple[TenantConfig, ...] = ()

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


def parse_config(text: str, base: Path) -> Config:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config is not valid TOML: {e}") from e
    _known(
        doc,
        "",
        {"server", "storage", "batch", "geoip", "user_agent", "policy", "tenants", "idempotency"},
    )
    server = _section(doc, "server")
    storage = _section(doc, "storage")
    batch = _section(doc, "batch")
    geoip = _section(doc, "geoip")
    ua = _section(doc, "user_agent")
    policy = _section(doc, "policy")
    idem = _section(doc, "idempotency")
    _known(idem, "idempotency", set(IdempotencyConfig.__slots__))
    i = IdempotencyConfig()
    idempotency_cfg = IdempotencyConfig(
        max_keys_per_tenant=_int(
            idem, "idempotency.max_keys_per_tenant", i.max_keys_per_tenant, 1, 10**8
        ),
        max_bytes_per_tenant=_int(
            idem, "idempotency.max_bytes_per_tenant", i.max_bytes_per_tenant, 4096, 2**40
        ),
        compact_min_bytes=_int(
            idem, "idempotency.compact_min_bytes", i.compact_min_bytes, 4096, 2**40
        ),
    )
    _known(server, "server", set(ServerConfig.__slots__))
    _known(storage, "storage", {"engine", "path", "database"})
    _known(batch, "batch", set(BatchConfig.__slots__))
    _known(geoip, "geoip", {"database"})
    _known(ua, "user_agent", {"cache_size"})
    _known(policy, "policy", {"file", "tenant_dir"})

    d = ServerConfig()
    server_cfg = ServerConfig(
        host=_str(server, "server.host", d.host),
        port=_int(server, "server.port", d.port, 0, 65535),
        max_body_bytes=_int(server, "server.max_body_bytes", d.max_body_bytes, 1, 2**40),
        max_decompressed_bytes=_int(
            server, "server.max_decompressed_bytes", d.max_decompressed_bytes, 1, 2**40
        ),
        max_records=_int(server, "server.max_records", d.max_records, 1, 10**7),
        shutdown_timeout_s=_int(server, "server.shutdown_timeout_s", d.shutdown_timeout_s, 1, 3600),
        tls_cert=_optional_path(base, _str(server, "server.tls_cert", "")),
        tls_key=_optional_path(base, _str(server, "server.tls_key", "")),
        allow_plaintext=_bool(server, "server.allow_plaintext", False),
        max_inflight_requests=_int(
            server, "server.max_inflight_requests", d.max_inflight_requests, 1, 100_000
        ),
        metrics_token_sha256=_str(server, "server.metrics_token_sha256", ""),
        max_inflight_per_tenant=_int(
            server, "server.max_inflight_per_tenant", d.max_inflight_per_tenant, 0, 100_000
        ),
        max_connections=_int(server, "server.max_connections", d.max_connections, 0, 10**7),
        keepalive_timeout_s=_int(
            server, "server.keepalive_timeout_s", d.keepalive_timeout_s, 1, 3600
        ),
        header_read_timeout_s=_int(
            server, "server.header_read_timeout_s", d.header_read_timeout_s, 1, 3600
        ),
        max_line_size=_int(server, "server.max_line_size", d.max_line_size, 256, 1 * MIB),
        max_field_size=_int(server, "server.max_field_size", d.max_field_size, 256, 1 * MIB),
        max_headers=_int(server, "server.max_headers", d.max_headers, 8, 10_000),
        max_head_bytes=_int(server, "server.max_head_bytes", d.max_head_bytes, 1024, 16 * MIB),
        body_read_timeout_s=_int(
            server, "server.body_read_timeout_s", d.body_read_timeout_s, 1, 3600
        ),
    )
    if server_cfg.metrics_token_sha256 and not SHA256_HEX.match(server_cfg.metrics_token_sha256):
        raise ConfigError("server.metrics_token_sha256: must be 64 lower-case hex digits")
    if server_cfg.max_inflight_per_tenant > server_cfg.max_inflight_requests:
        raise ConfigError("server.max_inflight_per_tenant: must not exceed max_inflight_requests")
    if (server_cfg.tls_cert is None) != (server_cfg.tls_key is None):
        raise ConfigError("server.tls_cert and server.tls_key: set both, or neither")
    engine = check_engine(_str(storage, "storage.engine", "embedded"))
    database = _str(storage, "storage.database", "telemetry")
    if not DATABASE.match(database):
        raise ConfigError("storage.database: must be letters, digits and _ (max 63)")
    storage_cfg = StorageConfig(
        engine=engine, path=_path(base, _str(storage, "storage.path", "data")), database=database
    )
    b = BatchConfig()
    batch_cfg = BatchConfig(
        max_rows=_int(batch, "batch.max_rows", b.max_rows, 1, 10**7),
        max_delay_ms=_int(batch, "batch.max_delay_ms", b.max_delay_ms, 0, 60_000),
        max_pending_rows=_int(batch, "batch.max_pending_rows", b.max_pending_rows, 1, 10**9),
        insert_retries=_int(batch, "batch.insert_retries", b.insert_retries, 0, 100),
    )
    geo_db = _str(geoip, "geoip.database", "")
    enrich_cfg = EnrichConfig(
        geoip_database=_path(base, geo_db) if geo_db else None,
        user_agent_cache_size=_int(ua, "user_agent.cache_size", 16_384, 0, 10**7),
    )
    policy_file = _str(policy, "policy.file", "")
    tenant_dir = _str(policy, "policy.tenant_dir", "")
    tenants = _tenants(doc.get("tenants", []))
    return Config(
        server=server_cfg,
        storage=storage_cfg,
        batch=batch_cfg,
        enrich=enrich_cfg,
        idempotency=idempotency_cfg,
        policy_file=_path(base, policy_file) if policy_file else None,
        policy_tenant_dir=_path(base, tenant_dir) if tenant_dir else None,
        tenants=tenants,
    )


def _tenants(raw: Any) -> tuple[TenantConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError("tenants: must be an array of tables ([[tenants]])")
    out: list[TenantConfig] = []
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    for i, t in enumerate(raw):
        where = f"tenants[{i}]"
        if not isinstance(t, dict):
            raise ConfigError(f"{where}: must be a table")
        _known(t, where, {"id", "plan", "api_key_sha256", "keys", "max_records_per_second"})
        tid = _str(t, f"{where}.id", "")
        if not TENANT_ID.match(tid):
            raise ConfigError(f"{where}.id: must match {TENANT_ID.pattern}")
        if tid in seen_ids:
            raise ConfigError(f"{where}.id: duplicate tenant id {tid!r}")
        seen_ids.add(tid)
        keys = t.get("api_key_sha256", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ConfigError(f"{where}.api_key_sha256: must be a list of strings")
        for j, k in enumerate(keys):
            _check_key_hash(k, f"{where}.api_key_sha256[{j}]", seen_keys)
        scoped = []
        raw_scoped = t.get("keys", [])
        if not isinstance(raw_scoped, list):
            raise ConfigError(f"{where}.keys: must be an array of tables ([[tenants.keys]])")
        for j, k in enumerate(raw_scoped):
            kwhere = f"{where}.keys[{j}]"
            if not isinstance(k, dict):
                raise ConfigError(f"{kwhere}: must be a table")
            _known(k, kwhere, {"sha256", "scopes"})
            digest = _str(k, f"{kwhere}.sha256", "")
            _check_key_hash(digest, f"{kwhere}.sha256", seen_keys)
            scopes = k.get("scopes", ["ingest"])
            if not isinstance(scopes, list) or not scopes or not set(scopes) <= SCOPES:
                raise ConfigError(
                    f"{kwhere}.scopes: a non-empty list of {', '.join(sorted(SCOPES))}"
                )
            scoped.append(ApiKeyConfig(digest, frozenset(scopes)))
        out.append(
            TenantConfig(
                id=tid,
                plan=_str(t, f"{where}.plan", ""),
                api_key_sha256=tuple(keys),
                keys=tuple(scoped),
                max_records_per_second=_int(t, f"{where}.max_records_per_second", 0, 0, 10**9),
            )
        )
    return tuple(out)


def _check_key_hash(digest: str, where: str, seen: set[str]) -> None:
    if not SHA256_HEX.match(digest):
        raise ConfigError(f"{where}: must be 64 lower-case hex digits (a SHA-256)")
    if digest in seen:
        raise ConfigError(f"{where}: the same key is listed twice")
    seen.add(digest)


def _section(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a table")
    return value


def _known(table: Mapping[str, Any], where: str, known: set[str]) -> None:
    for key in table:
        if key not in known:
            dotted = f"{where}.{key}" if where else key
            raise ConfigError(f"{dotted}: unknown key; known: {', '.join(sorted(known))}")


def _str(table: Mapping[str, Any], dotted: str, default: str) -> str:
    value = table.get(dotted.rsplit(".", 1)[-1], default)
    if not isinstance(value, str):
        raise ConfigError(f"{dotted}: must be a string")
    return value


def _int(table: Mapping[str, Any], dotted: str, default: int, lo: int, hi: int) -> int:
    value = table.get(dotted.rsplit(".", 1)[-1], default)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{dotted}: must be a whole number from {lo} to {hi}")
    return value


def _bool(table: Mapping[str, Any], dotted: str, default: bool) -> bool:
    value = table.get(dotted.rsplit(".", 1)[-1], default)
    if not isinstance(value, bool):
        raise ConfigError(f"{dotted}: must be true or false")
    return value


def _optional_path(base: Path, value: str) -> Path | None:
    return _path(base, value) if value else None


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
