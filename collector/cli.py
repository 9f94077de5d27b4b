"""`collector serve | sql | migrate | init | new-key`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from anonymizer.errors import AnonymizerError
from anonymizer.policy import Policy, default_policy, parse_policy
from collector import rollups
from collector.auth import hash_key, new_api_key
from collector.config import ServerConfig, check_transport, load_config
from collector.errors import CollectorError
from collector.logs import setup_logging
from collector.server import serve
from collector.sink import Sink
from collector.storage import open_sink

log = logging.getLogger("collector")
DEV_KEY_MARKER = "# dev-key-sha256"


def _serve(args: argparse.Namespace) -> int:
    from collector.app import create_app

    config = load_config(Path(args.config))
    app = create_app(config)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    check_transport(host, config.server)
    ssl_context = tls_context(config.server)
    scheme = "https" if ssl_context else "http"
    # printed, not logged: the log formatter scrubs every address, and this one is our own
    print(
        f"collector listening on {scheme}://{host}:{port} (storage: {config.storage.path})",
        flush=True,
    )
    asyncio.run(serve(app, host, port, ssl_context, config.server))
    log.info("collector stopped")
    return 0


def tls_context(server: ServerConfig) -> ssl.SSLContext | None:
    """TLS 1.2+ with the configured certificate chain, or None for plain HTTP."""
    if server.tls_cert is None or server.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(server.tls_cert, server.tls_key)
    except (OSError, ssl.SSLError) as e:
        raise CollectorError(f"server.tls_cert / tls_key: cannot load: {e}") from e
    return context


@contextmanager
def _migrated_sink(config_path: str) -> Iterator[Sink]:
    """The configured engine, migrated, for commands run while the server is not; closed after."""
    sink = open_sink(load_config(Path(config_path)).storage)
    try:
        rollups.migrate(sink)
        yield sink
    finally:
        sink.close()


def _base_policy(config_path: str) -> Policy:
    """The config's policy file (the scanner applies its detectors); none: the defaults."""
    path = load_config(Path(config_path)).policy_file
    return parse_policy(path.read_text()) if path else default_policy()


def _sql(args: argparse.Namespace) -> int:
    with _migrated_sink(args.config) as sink:
        out = sys.stdout.buffer
        for row in sink.query(args.query):
            out.write(orjson.dumps(row) + b"\n")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    sink = open_sink(load_config(Path(args.config)).storage)
    try:
        applied = rollups.migrate(sink)
    finally:
        sink.close()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def _init(args: argparse.Namespace) -> int:
    """A development config with a fresh API key: the key is shown once, only its hash kept."""
    target = Path(args.config)
    if target.exists():
        print(f"using existing {target}", file=sys.stderr)
        return 0
    example = Path(args.example)
    text = example.read_text()
    if DEV_KEY_MARKER not in text:
        shutil.copyfile(example, target)
        return 0
    key = new_api_key()
    target.write_text(text.replace(DEV_KEY_MARKER, f'"{hash_key(key)}"'))
    print(f"created {target} with a development API key for tenant 'dev' (shown only now):")
    print(f"  {key}")
    print(
        "try: curl -H 'Authorization: Bearer " + key + "' -H 'Content-Type: application/json' "
        '-d \'[{"ip":"203.0.113.7","path":"/"}]\' http://127.0.0.1:8080/v1/logs'
    )
    return 0


def _scan_pii(args: argparse.Namespace) -> int:
    """Exit 1 when anything personal is found: usable as a gate in CI or a cron job."""
    from collector.scan_pii import render, save_last, scan

    samples = Path(args.sample).read_text().splitlines() if args.sample else []
    policy = _base_policy(args.config)
    with _migrated_sink(args.config) as sink:
        findings, scanned = scan(sink, samples, policy)
    save_last(load_config(Path(args.config)).storage.path, findings, scanned)
    print(render(findings, scanned))
    return 1 if findings else 0


def _keys(args: argparse.Namespace) -> int:
    """rotate: a new key generation for the tenants now; shred: destroy keys made before a date
    (except the ones in force); list: the key files (names and dates, never the keys)."""
    from datetime import UTC, datetime

    from collector.keys import KeyStore
    from collector.policies import PolicyStore

    config = load_config(Path(args.config))
    tenants = [t.id for t in config.tenants if not args.tenant or t.id == args.tenant]
    if args.tenant and not tenants:
        raise CollectorError(f"no tenant {args.tenant!r} in the config")
    keys = KeyStore(config.storage.keys_path)
    now = datetime.now(UTC)
    policies = PolicyStore(config.policy_file, config.tenant_policy_dir, tenants)
    for t in tenants:
        period = policies.for_tenant(t).identifiers.epoch(now)
        current = keys.current_epoch(t, period)
        if args.action == "rotate":
            gen = keys.rotate(t)
            print(f"{t}: new key generation {gen}; epoch in force: {keys.current_epoch(t, period)}")
        elif args.action == "shred":
            if not args.before:
                raise CollectorError("keys shred needs --before YYYY-MM-DD")
            try:
                before = datetime.strptime(args.before, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                raise CollectorError("keys shred --before: must be YYYY-MM-DD") from None
            gone = keys.shred(t, before, current)
            print(
                f"{t}: shredded {len(gone)} keys"
                + (": " + ", ".join(k.epoch for k in gone) if gone else "")
            )
        else:
            for k in keys.key_files(t):
                made = datetime.fromtimestamp(k.created, UTC).strftime("%Y-%m-%d %H:%M")
                print(
                    f"{t}\t{k.epoch}\tcreated {made}" + ("\tin force" if k.epoch == current else "")
                )
    return 0


def _new_key(args: argparse.Namespace) -> int:
    key = new_api_key()
    print(f"api key (give to the client, store nowhere): {key}")
    print(f'config line: api_key_sha256 = ["{hash_key(key)}"]')
    return 0


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(prog="collector", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTP collector")
    s.add_argument("--config", required=True)
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=_serve)
    q = sub.add_parser("sql", help="run a query on the embedded engine and print JSON lines")
    q.add_argument("--config", required=True)
    q.add_argument("query")
    q.set_defaults(func=_sql)
    m = sub.add_parser("migrate", help="apply pending sql/ migrations")
    m.add_argument("--config", required=True)
    m.set_defaults(func=_migrate)
    i = sub.add_parser("init", help="create a development config with a fresh API key")
    i.add_argument("--config", required=True)
    i.add_argument("--example", default="collector.example.toml")
    i.set_defaults(func=_init)
    s = sub.add_parser(
        "scan-pii", help="scan every stored string for personal data; exit 1 on a finding"
    )
    s.add_argument("--config", required=True)
    s.add_argument(
        "--sample", help="a file of raw identifier values (one a line) that must not be stored"
    )
    s.set_defaults(func=_scan_pii)
    ks = sub.add_parser("keys", help="pseudonym keys: rotate, shred --before DATE, list")
    ks.add_argument("action", choices=["rotate", "shred", "list"])
    ks.add_argument("--config", required=True)
    ks.add_argument("--tenant")
    ks.add_argument(
        "--before", help="shred: YYYY-MM-DD (UTC); keys created before it are destroyed"
    )
    ks.set_defaults(func=_keys)
    k = sub.add_parser("new-key", help="print a new API key and its config line")
    k.set_defaults(func=_new_key)
    args = p.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (CollectorError, AnonymizerError) as e:
        # the one CLI edge: a bad config or policy, the engine refusing, is one line and exit 2
        # (1 is scan-pii's "found something"); every message names keys and files, not values
        print(f"collector: {e}", file=sys.stderr)
        return 2
