from pathlib import Path

import pytest

from anonymizer.errors import PolicyError
from anonymizer.policy import parse_policy
from collector.config import (
    ApiKeyConfig,
    BatchConfig,
    EnrichConfig,
    IdempotencyConfig,
    ServerConfig,
    StorageConfig,
    TenantConfig,
    load_config,
    parse_config,
)
from collector.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SHA = "a" * 64


def test_example_config_with_a_key_parses(tmp_path: Path) -> None:
    text = (REPO / "collector.example.toml").read_text().replace("# dev-key-sha256", f'"{SHA}"')
    (tmp_path / "c.toml").write_text(text)
    c = load_config(tmp_path / "c.toml")
    assert c.server.port == 8080 and c.storage.engine == "embedded"
    assert c.storage.path == tmp_path / "data"  # relative to the config file
    assert c.policy_file == tmp_path / "policy.toml"
    assert c.enrich.geoip_database is None
    assert c.tenants[0].id == "dev" and c.tenants[0].api_key_sha256 == (SHA,)
    assert c.server.body_read_timeout_s == 30


def test_body_read_timeout() -> None:
    assert parse_config("", Path("/")).server.body_read_timeout_s == 30
    config = parse_config("[server]\nbody_read_timeout_s = 5\n", Path("/"))
    assert config.server.body_read_timeout_s == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "server.prot: unknown key"),
        ("[servr]\n", "servr: unknown key"),
        ("[server]\nport = 70000\n", "server.port: must be a whole number from 0 to 65535"),
        ('[storage]\nengine = "postgres"\n', "storage.engine"),
        ('[storage]\nengine = "clickhouse"\n', "storage.url: must be http"),
        ('[storage]\nengine = "clickhouse"\nurl = "ftp://h"\n', "storage.url: must be http"),
        ('[storage]\nurl = "http://h:8123"\n', 'only with engine = "clickhouse"'),
        ('[storage]\nengine = "clickhouse"\nurl = "http://h"\npassword = "p"\npassword_file = "/etc/hostname"\n', "set one, not both"),
        ('[storage]\nengine = "clickhouse"\nurl = "http://h"\npassword_file = "/nonexistent/pw"\n', "storage.password_file: no such file"),
        ('[storage]\nengine = "clickhouse"\nurl = "https://h"\nca_file = "/nonexistent/ca.pem"\n', "storage.ca_file: no such file"),
        ('[storage]\nengine = "clickhouse"\nurl = "http://h"\ncluster = "a b"\n', "storage.cluster"),
        ('[storage]\nengine = "clickhouse"\nurl = "http://h"\nverify = "no"\n', "storage.verify"),
        ('[storage]\ndatabase = "x-y"\n', "storage.database"),
        ("[batch]\nmax_rows = 0\n", "batch.max_rows"),
        ("[server]\nbody_read_timeout_s = 0\n", "server.body_read_timeout_s: must be a whole"),
        ('[server]\nbody_read_timeout_s = "30"\n', "server.body_read_timeout_s"),
        ('[[tenants]]\nid = "Bad Id"\n', "tenants[0].id"),
        ('[[tenants]]\nid = "a"\napi_key_sha256 = ["xyz"]\n', "tenants[0].api_key_sha256[0]"),
        ('[[tenants]]\nid = "a"\n[[tenants]]\nid = "a"\n', "tenants[1].id: duplicate"),
        (f'[[tenants]]\nid = "a"\napi_key_sha256 = ["{SHA}"]\n[[tenants]]\nid = "b"\n'
         f'api_key_sha256 = ["{SHA}"]\n', "tenants[1].api_key_sha256[0]: the same key"),
        ('[[tenants]]\nid = "a"\nkey = "x"\n', "tenants[0].key: unknown key"),
        ("not toml [", "not valid TOML"),
        ("[server]\nmax_connections = -1\n", "server.max_connections"),
        ("[server]\nkeepalive_timeout_s = 0\n", "server.keepalive_timeout_s"),
        ("[server]\nheader_read_timeout_s = 0\n", "server.header_read_timeout_s"),
        ("[server]\nmax_headers = 2\n", "server.max_headers"),
        ("[server]\nmax_line_size = 10\n", "server.max_line_size"),
        ("[server]\nmax_field_size = 10\n", "server.max_field_size"),
        ("[server]\nmax_head_bytes = 10\n", "server.max_head_bytes"),
        ("[server]\nmax_inflight_requests = 4\nmax_inflight_per_tenant = 5\n",
         "server.max_inflight_per_tenant: must not exceed"),
        ("[storage]\nengine_nice = 20\n", "storage.engine_nice"),
        ("[storage]\nengine_nice = -1\n", "storage.engine_nice"),
    ],
)  # fmt: skip
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, Path("/"))
    assert message in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_idempotency_bounds_and_metrics_token(tmp_path: Path) -> None:
    from collector.config import ConfigError, parse_config

    config = parse_config(
        "[idempotency]\nmax_keys_per_tenant = 10\nmax_bytes_per_tenant = 8192\n"
        f'[server]\nmetrics_token_sha256 = "{SHA}"\n',
        tmp_path,
    )
    assert (config.idempotency.max_keys_per_tenant, config.idempotency.max_bytes_per_tenant) == (
        10,
        8192,
    )
    assert config.server.metrics_token_sha256 == SHA
    default = parse_config("", tmp_path)
    assert default.idempotency.max_keys_per_tenant == 100_000
    assert default.server.metrics_token_sha256 == ""
    for text, key in (
        ("[idempotency]\nmax_keys_per_tenant = 0\n", "idempotency.max_keys_per_tenant"),
        ("[idempotency]\nmax_bytes_per_tenant = 10\n", "idempotency.max_bytes_per_tenant"),
        ("[idempotency]\nttl = 1\n", "idempotency.ttl"),
        ('[server]\nmetrics_token_sha256 = "secret"\n', "server.metrics_token_sha256"),
    ):
        try:
            parse_config(text, tmp_path)
        except ConfigError as e:
            assert str(e).startswith(key), e
            assert "secret" not in str(e)
        else:
            raise AssertionError(text)


def test_connection_settings() -> None:
    d = parse_config("", Path("/")).server
    assert (d.max_connections, d.keepalive_timeout_s, d.header_read_timeout_s) == (0, 30, 10)
    assert (d.max_line_size, d.max_field_size, d.max_headers, d.max_head_bytes) == (
        8190, 8190, 64, 65536,
    )  # fmt: skip
    assert d.inflight_per_tenant == 16  # a quarter of 64
    s = parse_config(
        "[server]\nmax_inflight_requests = 3\nmax_connections = 50\nkeepalive_timeout_s = 5\n",
        Path("/"),
    ).server
    assert s.inflight_per_tenant == 1 and s.max_connections == 50 and s.keepalive_timeout_s == 5
    assert (
        parse_config(
            "[server]\nmax_inflight_per_tenant = 7\n", Path("/")
        ).server.inflight_per_tenant
        == 7
    )


def test_an_empty_config_is_the_dataclass_defaults(tmp_path: Path) -> None:
    """Defaults are written once, in the dataclasses: the reader takes them from there."""
    c = parse_config("", tmp_path)
    assert c.server == ServerConfig()
    assert c.batch == BatchConfig() and c.enrich == EnrichConfig()
    assert c.idempotency == IdempotencyConfig()
    assert c.storage == StorageConfig(path=tmp_path / StorageConfig().path)
    assert (c.policy_file, c.policy_tenant_dir, c.tenants) == (None, None, ())
    t = parse_config(f'[[tenants]]\nid = "a"\n[[tenants.keys]]\nsha256 = "{SHA}"\n', tmp_path)
    assert t.tenants[0] == TenantConfig("a", keys=(ApiKeyConfig(SHA),))


def test_config_and_policy_refuse_in_the_same_words() -> None:
    """One reader: the same check gives the same reason in both files."""
    with pytest.raises(ConfigError) as config_error:
        parse_config('[batch]\nmax_rows = "1"\n', Path("/"))
    with pytest.raises(PolicyError) as policy_error:
        parse_policy('version = 1\n[reports]\nmin_k = "1"\n')
    assert str(config_error.value).endswith(": must be a whole number from 1 to 10000000")
    assert policy_error.value.reason.startswith("must be a whole number from ")


def test_the_server_engine_keys_parse_and_the_password_stays_out_of_repr(tmp_path: Path) -> None:
    (tmp_path / "ch.pw").write_text("s3cret-pw\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = parse_config(
        '[storage]\nengine = "clickhouse"\nurl = "https://ch.internal:8443/"\n'
        'database = "tel"\nuser = "collector"\npassword_file = "ch.pw"\nca_file = "ca.pem"\n'
        'verify = true\ncluster = "prod"\ntimeout_s = 5\n',
        tmp_path,
    )
    s = cfg.storage
    assert (s.engine, s.url, s.database, s.user) == (
        "clickhouse",
        "https://ch.internal:8443",
        "tel",
        "collector",
    )
    assert (s.password_file, s.ca_file, s.cluster, s.timeout_s) == (
        tmp_path / "ch.pw",
        tmp_path / "ca.pem",
        "prod",
        5,
    )
    inline = parse_config(
        '[storage]\nengine = "clickhouse"\nurl = "http://127.0.0.1:8123"\npassword = "s3cret-pw"\n',
        tmp_path,
    )
    assert inline.storage.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(inline) and "s3cret-pw" not in repr(inline.storage)
    assert parse_config("", tmp_path).storage.engine == "embedded"  # `make run` stays embedded


def test_keys_and_salts_may_live_in_a_shared_folder(tmp_path: Path) -> None:
    """Collectors sharing a ClickHouse server share their pseudonym keys and visitor salts."""
    from collector.config import parse_config

    default = parse_config('[storage]\npath = "d"\n', base=tmp_path).storage
    assert default.keys_path == tmp_path / "d" / "keys"
    assert default.salts_path == tmp_path / "d" / "salts"
    shared = parse_config(
        '[storage]\npath = "d"\nkeys_dir = "/shared/keys"\nsalts_dir = "s"\n', base=tmp_path
    ).storage
    assert shared.keys_path == Path("/shared/keys") and shared.salts_path == tmp_path / "s"


def test_ingest_trusted_proxies_and_declared_formats() -> None:
    from collector.forwarded import DEFAULT_TRUSTED

    assert parse_config("", Path(".")).ingest.trusted_proxies == DEFAULT_TRUSTED
    cfg = parse_config('[ingest]\ntrusted_proxies = ["10.1.0.0/16", "2001:db8::/32"]\n', Path("."))
    assert cfg.ingest.trusted_proxies == ("10.1.0.0/16", "2001:db8::/32")
    tenant = '[[tenants]]\nid = "acme"\n'
    fmt = "nginx_log_format = '$remote_addr [$time_local] $status'\n"
    assert parse_config(tenant + fmt, Path(".")).tenants[0].nginx_log_format.startswith("$remote")
    for text, message in (
        ('[ingest]\ntrusted_proxies = ["10.0.0.0/8", "nope"]\n', "ingest.trusted_proxies: entry 1"),
        ("[ingest]\ntrusted = []\n", "ingest.trusted"),
        (tenant + "nginx_log_format = '$a$b'\n", "tenants[0].nginx_log_format: "),
        (tenant + "apache_log_format = 'no fields'\n", "tenants[0].apache_log_format: "),
        (tenant + fmt + "apache_log_format = '%h'\n", "not both"),
    ):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_config(text, Path("."))
