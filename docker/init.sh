#!/bin/sh
# One-time setup for docker/compose.yaml: fresh secrets in docker/secrets/ (0700, never
# committed), their hashes in docker/collector.toml, and the access SQL ClickHouse runs on its
# first start (`collector grants`: roles, plus the collectors' and Grafana's users).
# Needs the collector installed on this machine: `make install` first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
collector=${COLLECTOR:-$here/../.venv/bin/collector}
python=${PYTHON:-$here/../.venv/bin/python}
cd "$here"
if [ -e secrets/clickhouse.env ]; then
    echo "docker/secrets/ exists: remove it (and the compose volumes) to start over" >&2
    exit 1
fi
umask 077
mkdir -p secrets
rand() { "$python" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
sha256() { "$python" -c 'import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())' "$1"; }

printf 'CLICKHOUSE_USER=admin\nCLICKHOUSE_PASSWORD=%s\nCLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1\n' \
    "$(rand)" > secrets/clickhouse.env
rand > secrets/clickhouse_collector_password
rand > secrets/clickhouse_grafana_password
rand > secrets/metrics_token
rand > secrets/collector_master_key
echo "tck_$(rand)" > secrets/ingest_key
echo "tck_$(rand)" > secrets/admin_key

# the placeholders in collector.toml (hashes no key can have) become the new secrets' hashes
"$python" - "$(sha256 "$(cat secrets/ingest_key)")" "$(sha256 "$(cat secrets/admin_key)")" \
    "$(sha256 "$(cat secrets/metrics_token)")" <<'PY'
import sys
from pathlib import Path

config = Path("collector.toml")
text = config.read_text()
for i, digest in enumerate(sys.argv[1:]):
    placeholder = f"{i:064d}"
    if placeholder not in text:
        sys.exit(f"collector.toml: placeholder {i} not found (git checkout docker/collector.toml)")
    text = text.replace(placeholder, digest)
config.write_text(text)
PY

# roles and Grafana's user from the collector's own generator (it needs the database name and
# the tenant only); the collectors' own user with the writer role
printf '[storage]\ndatabase = "telemetry"\n[[tenants]]\nid = "demo"\napi_key_sha256 = ["%s"]\n' \
    "$(sha256 "$(cat secrets/ingest_key)")" > secrets/grants.toml
"$collector" grants --config secrets/grants.toml --tenant demo --user grafana \
    --password-file secrets/clickhouse_grafana_password > secrets/access.sql
salt=$(rand)
hash=$(sha256 "$(cat secrets/clickhouse_collector_password)$salt")
cat >> secrets/access.sql <<SQL

-- the collectors' user: the writer role only
CREATE USER IF NOT EXISTS collector IDENTIFIED WITH sha256_hash BY '$hash' SALT '$salt';
GRANT collector_writer TO collector;
ALTER USER collector DEFAULT ROLE collector_writer;
SQL
chmod 644 secrets/access.sql secrets/clickhouse_*_password secrets/metrics_token \
    secrets/collector_master_key  # read by the containers' own users
echo "secrets in docker/secrets/; ingest key: secrets/ingest_key, admin key: secrets/admin_key"
