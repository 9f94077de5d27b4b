"""docker/: every file compose mounts is shipped (or made by docker/init.sh), the collectors'
config loads with the collector's own parser, and ports, hosts, secrets and paths agree across
compose.yaml, collector.toml, prometheus.yml and the Grafana provisioning."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from anonymizer.rules import ROLLUPS
from anonymizer.sql_text import split_statements
from collector.config import Config, check_transport, parse_config
from collector.storage import ENGINES

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
CONFIG_TARGET = "/etc/collector/collector.toml"
COLLECTORS = ("collector-a", "collector-b")
SERVER_ONLY = ("url", "user", "password", "password_file", "ca_file", "verify", "cluster")


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return doc


def service(name: str) -> dict[str, Any]:
    svc: dict[str, Any] = compose()["services"][name]
    return svc


def mounts(name: str) -> dict[str, str]:
    """Container path -> source (a named volume, or a path relative to docker/)."""
    out = {}
    for spec in service(name).get("volumes", []):
        source, target = spec.split(":")[:2]
        out[target] = source
    for secret in service(name).get("secrets", []):
        out[f"/run/secrets/{secret}"] = compose()["secrets"][secret]["file"]
    return out


def covering(name: str, path: str) -> str | None:
    """The mount a container path lies in (the longest match), or None."""
    found = [t for t in mounts(name) if path == t or path.startswith(t.rstrip("/") + "/")]
    return max(found, key=len) if found else None


def raw_config() -> dict[str, Any]:
    return tomllib.loads((DOCKER / "collector.toml").read_text())


def load(text: str, tmp_path: Path) -> Config:
    """Parse with the collector's own parser. The server engine's keys are checked when that
    engine is registered (its file references must then exist: mapped to placeholders here);
    without it, the same config with the embedded engine."""
    text = text.replace("/run/secrets/", f"{tmp_path}/secrets/")
    (tmp_path / "secrets").mkdir(exist_ok=True)
    for secret in compose()["secrets"]:
        (tmp_path / "secrets" / secret).write_text("x\n")
    if "clickhouse" not in ENGINES:
        lines = [ln for ln in text.splitlines() if ln.split("=")[0].strip() not in SERVER_ONLY]
        text = "\n".join(lines).replace('engine = "clickhouse"', 'engine = "embedded"')
    return parse_config(text, base=DOCKER)


def test_every_mounted_file_is_shipped_or_made_by_init_sh() -> None:
    init = (DOCKER / "init.sh").read_text()
    sources = [s for name in compose()["services"] for s in mounts(name).values()]
    sources += [service("clickhouse")["env_file"]]
    for source in sources:
        if not source.startswith("./"):
            assert source in compose()["volumes"], source  # a named volume, declared
        elif source.startswith("./secrets/"):
            assert f"secrets/{Path(source).name}" in init, source  # generated, never committed
        else:
            assert (DOCKER / source).exists(), source
    assert "docker/secrets/" in (REPO / ".gitignore").read_text()


def test_images_are_pinned() -> None:
    for name, svc in compose()["services"].items():
        if "image" in svc:
            _, _, tag = svc["image"].partition(":")
            assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), name
    assert service("clickhouse")["image"].startswith("clickhouse/clickhouse-server:")


def test_the_collectors_config_loads_and_listens_where_everyone_looks(tmp_path: Path) -> None:
    config = load((DOCKER / "collector.toml").read_text(), tmp_path)
    check_transport(config.server.host, config.server)  # 0.0.0.0 needs allow_plaintext
    assert config.server.host == "0.0.0.0" and config.server.allow_plaintext
    port = config.server.port
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert f"EXPOSE {port}" in dockerfile and CONFIG_TARGET in dockerfile
    host_ports = set()
    for name in COLLECTORS:
        assert mounts(name)[CONFIG_TARGET] == "./collector.toml"
        (mapping,) = service(name)["ports"]
        ip, host_port, container_port = mapping.split(":")
        assert ip == "127.0.0.1" and int(container_port) == port
        host_ports.add(host_port)
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(service(name)["healthcheck"]["test"])
    assert len(host_ports) == len(COLLECTORS)
    prometheus = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    (targets,) = [s["targets"] for s in job["static_configs"]]
    assert sorted(targets) == sorted(f"{name}:{port}" for name in COLLECTORS)
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"
    token = job["authorization"]["credentials_file"]
    assert covering("prometheus", token) == token  # the metrics token, as a secret
    assert config.server.metrics_token_sha256  # checked against it by the collector


def test_the_collectors_share_keys_and_salts_and_nothing_else(tmp_path: Path) -> None:
    storage = raw_config()["storage"]
    config = load((DOCKER / "collector.toml").read_text(), tmp_path)
    assert config.storage.master_key_file == tmp_path / "secrets" / "collector_master_key"
    for name in COLLECTORS:  # the master key is a secret, not on the shared volume
        assert covering(name, storage["master_key_file"]) == storage["master_key_file"]
    assert config.storage.keys_path == Path(storage["keys_dir"])
    assert config.storage.salts_path == Path(storage["salts_dir"])
    own, shared = [], []
    for name in COLLECTORS:
        own.append(mounts(name)[covering(name, storage["path"]) or ""])
        keys = mounts(name)[covering(name, storage["keys_dir"]) or ""]
        salts = mounts(name)[covering(name, storage["salts_dir"]) or ""]
        assert keys == salts
        shared.append(keys)
    assert len(set(own)) == len(COLLECTORS)  # each collector's own data volume
    assert len(set(shared)) == 1 and shared[0] in compose()["volumes"]  # one key store
    assert not set(own) & set(shared)


def test_the_collectors_reach_the_clickhouse_server_as_configured(tmp_path: Path) -> None:
    storage = raw_config()["storage"]
    assert storage["engine"] == "clickhouse"
    m = re.fullmatch(r"http://([\w-]+):(\d+)", storage["url"])
    assert m and m[1] == "clickhouse" and m[1] in compose()["services"]
    assert service("clickhouse")["ports"] == [f"127.0.0.1:{m[2]}:{m[2]}"]
    for name in COLLECTORS:
        assert covering(name, storage["password_file"]) == storage["password_file"]
    policy = raw_config()["policy"]["file"]  # in the image: the Dockerfile copies it there
    assert policy == "/app/policy.toml" and "WORKDIR /app" in (DOCKER / "Dockerfile").read_text()
    assert "COPY policy.toml ./" in (DOCKER / "Dockerfile").read_text()


def test_grafana_reads_the_rollups_only_as_the_tenant_bound_user() -> None:
    provisioning = DOCKER / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "clickhouse.yaml").read_text())[
        "datasources"
    ]
    storage = raw_config()["storage"]
    assert source["jsonData"]["host"] == "clickhouse"
    assert str(source["jsonData"]["port"]) == storage["url"].rsplit(":", 1)[1]
    assert source["jsonData"]["defaultDatabase"] == storage["database"]
    user = source["jsonData"]["username"]
    assert f"--user {user}" in (DOCKER / "init.sh").read_text()  # made by `collector grants`
    secret = re.fullmatch(r"\$__file\{(.+)\}", source["secureJsonData"]["password"])
    assert secret and covering("grafana", secret[1]) == secret[1]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "collector.yaml").read_text())[
        "providers"
    ]
    folder = provider["options"]["path"]
    assert mounts("grafana")[folder] == "./grafana/dashboards"
    assert mounts("grafana")["/etc/grafana/provisioning"] == "./grafana/provisioning"
    dashboards = list((DOCKER / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == source["uid"]
            for target in panel["targets"]:
                tables = set(re.findall(r"\bFROM\s+(\w+)", target["rawSql"], re.I))
                assert tables and tables <= set(ROLLUPS), panel["title"]


def test_init_sh_makes_the_secrets_and_hashes_and_access_sql(tmp_path: Path) -> None:
    from collector.auth import hash_key
    from collector.sink_chdb import ChdbSink

    copy = tmp_path / "docker"
    shutil.copytree(DOCKER, copy, ignore=shutil.ignore_patterns("secrets"))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "COLLECTOR": str(bin_dir / "collector"), "PYTHON": sys.executable}
    run = subprocess.run(["sh", str(copy / "init.sh")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    secrets = copy / "secrets"
    assert oct(secrets.stat().st_mode & 0o777) == "0o700"
    text = (copy / "collector.toml").read_text()
    assert "0" * 63 not in text  # every placeholder replaced
    for key in ("ingest_key", "admin_key", "metrics_token"):
        assert hash_key((secrets / key).read_text().strip()) in text
    config = load(text, tmp_path)
    assert {k.sha256 for k in config.tenants[0].all_keys()} == {
        hash_key((secrets / k).read_text().strip()) for k in ("ingest_key", "admin_key")
    }
    access = (secrets / "access.sql").read_text()
    for secret in ("clickhouse_collector_password", "clickhouse_grafana_password"):
        assert (secrets / secret).read_text().strip() not in access  # hashes only
    statements = split_statements(access)
    assert "GRANT collector_writer TO collector" in statements
    sink = ChdbSink(tmp_path / "chdb", "docker_test", tmp_path / "tmp")
    try:
        for statement in statements:
            sink.query("SELECT formatQuery({q:String}) AS f", {"q": statement})
    finally:
        sink.close()
    again = subprocess.run(["sh", str(copy / "init.sh")], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr  # never overwrites secrets
