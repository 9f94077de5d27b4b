from pathlib import Path

import pytest

from collector.config import load_config, parse_config
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
        ('[storage]\nengine = "clickhouse"\n', "storage.engine"),
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
    ],
)  # fmt: skip
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, Path("/"))
    assert message in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")
