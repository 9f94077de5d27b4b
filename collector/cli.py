"""`collector serve | sql | migrate | grants | init | keys | scan-pii | new-key`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import ssl
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from anonymizer.errors import AnonymizerError
from anonymizer.policy import Policy, default_policy, parse_policy
from collector import grants, rollups
from collector.auth import hash_key, new_api_key
from collector.config import ServerConfig, check_transport, load_config
from collector.errors import CollectorError
from collector.logs import setup_logging
from collector.sink import Sink
from collector.storage import open_sink

log = logging.getLogger("collector")
DEV_KEY_MARKER = "# dev-key-sha256"


def default_workers(spool_enabled: bool) -> int:
    """The cores this process may run on (its affinity, not the machine's count: a pinned or
    containerised service gets one worker per core it has). Without the spool only the one
    process that holds the engine can accept, so 1."""
    return len(os.sched_getaffinity(0)) if spool_enabled else 1


def _serve(args: argparse.Namespace) -> int:
    from collector.app import create_app
    from collector.roles import Role, primary_socket
    from collector.server import serve  # here: `import` and `new-key` need none of the app

    config = load_config(Path(args.config))
    if config.policy_file is not None and not config.policy_file.is_file():
        # checked before "listening" is printed: the app would only find out while starting
        raise CollectorError(f"[policy] file: {config.policy_file} does not exist")
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    check_transport(host, config.server)
    ssl_context = tls_context(config.server)
    if args.workers is None:  # every usable core; one process when there is no spool to share
        args.workers = default_workers(config.spool.enabled)
    if args.workers < 1:
        raise CollectorError("serve --workers: at least 1")
    if args.workers > 1 and not config.spool.enabled:  # the primary ships the workers' spools
        raise CollectorError("serve --workers N (N > 1) needs [spool] enabled = true")
    if args.workers > 1 and args.role is None:  # the supervisor (collector/workers.py)
        from collector.workers import Supervisor

        given = [*(["--host", args.host] if args.host else []),
                 *(["--port", str(args.port)] if args.port is not None else [])]  # fmt: skip
        scheme = "https" if ssl_context else "http"
        print(f"collector: {args.workers} workers on {scheme}://{host}:{port}", flush=True)
        return Supervisor(args.config, config, given, args.workers).run()
    role = Role(args.role, args.index, args.workers) if args.role else None
    app = create_app(config, role)
    scheme = "https" if ssl_context else "http"
    # printed, not logged: the log formatter scrubs every address, and this one is our own
    print(
        f"collector listening on {scheme}://{host}:{port} (storage: {config.storage.path})"
        + (f" as {role.kind} worker {role.index}" if role else ""),
        flush=True,
    )
    unix_path = primary_socket(config) if role is not None and role.kind == "primary" else None
    asyncio.run(
        serve(
            app, host, port, ssl_context, config.server,
            reuse_port=role is not None, unix_path=unix_path,
        )
    )  # fmt: skip
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
    """Read-only: through the running service when one answers, else on the engine here."""
    from collector import admin_sql, sql_client

    config = load_config(Path(args.config))
    try:
        timeout = config.server.admin_sql_timeout_s + 10
        key = sql_client.admin_key(args.key_file)
        rows = sql_client.ask_service(config, key, args.query, timeout)
    except sql_client.NoService:
        why = admin_sql.refusal(args.query, admin_sql.KNOWN_TABLE_FUNCTIONS)
        if why:  # refused before the engine is even opened
            raise admin_sql.ReadOnlyRefused(why) from None
        with _migrated_sink(args.config) as sink:
            functions = admin_sql.table_functions(sink)
            rows = admin_sql.run(sink, args.query, functions, 0, 0, 0)  # 0: no bound
    sys.stdout.write(admin_sql.render(rows, args.format))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    if args.print:  # the DDL only, nothing connected: review it, or run it with any client
        from collector.config import StorageConfig
        from collector.migrate import script

        storage = load_config(Path(args.config)).storage if args.config else StorageConfig()
        cluster = storage.cluster if args.cluster is None else args.cluster
        sys.stdout.write(script(storage.database, cluster=cluster))
        return 0
    if not args.config:
        raise CollectorError("migrate needs --config (or --print)")
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
    example = _example(args.example)
    try:
        text = example.read_text()
    except OSError as e:
        raise CollectorError(
            f"init: cannot read the example config {example} ({e.strerror})"
        ) from e
    _copy_policy(example, text, target)
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


def _example(given: str | None) -> Path:
    """The example config: as given, else `collector.example.toml` here, else the one of the
    checkout this collector runs from (so `init` works from any folder)."""
    if given:
        return Path(given)
    here = Path("collector.example.toml")
    checkout = Path(__file__).resolve().parent.parent / here.name
    return here if here.is_file() or not checkout.is_file() else checkout


def _copy_policy(example: Path, text: str, target: Path) -> None:
    """The policy file the example names relatively, copied beside the new config when it is not
    there yet: the config names it relatively, so a config written elsewhere would otherwise
    point at nothing (and `serve` stop at once)."""
    try:
        doc = tomllib.loads(text.replace(DEV_KEY_MARKER, '"0"'))
    except tomllib.TOMLDecodeError as e:
        raise CollectorError(f"{example}: not valid TOML: {e}") from e
    name = doc.get("policy", {}).get("file", "")
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        return
    source, dest = example.parent / name, target.parent / name
    if source.is_file() and not dest.exists() and source.resolve() != dest.resolve():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        print(f"copied {source} to {dest}", file=sys.stderr)


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
    from collector.sealing import load_sealer

    config = load_config(Path(args.config))
    tenants = [t.id for t in config.tenants if not args.tenant or t.id == args.tenant]
    if args.tenant and not tenants:
        raise CollectorError(f"no tenant {args.tenant!r} in the config")
    keys = KeyStore(config.storage.keys_path, sealer=load_sealer(config.storage.master_key_file))
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


def _grants(args: argparse.Namespace) -> int:
    """Only SQL on stdout; with --apply it is also run, on a ClickHouse server only."""
    config = load_config(Path(args.config))
    if bool(args.tenant) != bool(args.user):
        raise CollectorError("grants: give --tenant and --user together")
    if args.apply and config.storage.engine == "embedded":
        raise CollectorError(
            "grants --apply: the embedded engine (chDB) has no users, roles or row policies; "
            "there the service's API keys and scopes are the access control. Run this against "
            'a ClickHouse server (storage.engine = "clickhouse"), or print the SQL without --apply'
        )
    person = None
    if args.tenant:
        if args.tenant not in {t.id for t in config.tenants}:
            raise CollectorError(f"no tenant {args.tenant!r} in the config")
        person = grants.tenant_user(args.tenant, args.user, _password(args.password_file))
    cluster = args.cluster or str(getattr(config.storage, "cluster", "") or "")
    statements = grants.grants_sql(config.storage.database, _grant_schema(), cluster, person)
    header = (
        f"collector grants for database {config.storage.database}"
        + (f" on cluster {cluster}" if cluster else "")
        + "\ngenerated from sql/; run as a ClickHouse user allowed to manage access"
    )
    sys.stdout.write(grants.render(statements, header))
    if args.apply:
        # roles and users are not in a database, and every table is named with its database:
        # connect to `default`, so the grants can run before `collector migrate` made ours
        sink = open_sink(replace(config.storage, database="default"))
        try:
            run = getattr(sink, "command", None) or getattr(sink, "execute", None) or sink.query
            for _, statement in statements:
                run(statement)
        finally:
            sink.close()
        print(f"applied {len(statements)} statements", file=sys.stderr)
    return 0


def _grant_schema() -> grants.Schema:
    from collector.migrate import CREATE_MIGRATIONS_TABLE, SQL_DIR

    texts = {p.name: p.read_text() for p in sorted(SQL_DIR.glob("*.sql"))}
    return grants.schema(texts, {"schema_migrations": CREATE_MIGRATIONS_TABLE})


def _password(password_file: str | None) -> str:
    """From --password-file (its first line), else asked twice on the terminal; never echoed,
    never printed: the SQL carries only its salted SHA-256."""
    import getpass

    if password_file:
        try:
            lines = Path(password_file).read_text().splitlines()
        except OSError as e:
            raise CollectorError(f"--password-file {password_file}: {e.strerror}") from e
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        raise CollectorError("grants --user: give --password-file (no terminal to ask on)")
    first = getpass.getpass("password for the new user: ")
    if getpass.getpass("again: ") != first:
        raise CollectorError("the two passwords differ")
    return first


def _import(args: argparse.Namespace) -> int:
    """Backfill files through the running service (see collector/importer.py)."""
    import os

    from collector import importer

    key = os.environ.get("COLLECTOR_API_KEY", "")
    if args.key_file:
        try:
            key = Path(args.key_file).read_text().strip()
        except OSError as e:
            raise CollectorError(f"--key-file: cannot read: {e.strerror}") from None
    if not key:
        raise CollectorError("import needs an ingest key: COLLECTOR_API_KEY or --key-file")
    url = args.url
    if args.config:
        config = load_config(Path(args.config))
        # the key must be the tenant's own: the service takes the tenant from the key
        from collector.auth import Authenticator
        from collector.errors import HttpError

        try:
            tenant = Authenticator(config.tenants).authenticate(f"Bearer {key}")
            tenant.require(frozenset({"ingest"}))
        except HttpError as e:
            raise CollectorError(f"the key: {e.detail}") from None
        if tenant.id != args.tenant:
            raise CollectorError(f"the key belongs to another tenant than {args.tenant!r}")
        if url is None:
            scheme = "https" if config.server.tls_cert else "http"
            host = (
                "127.0.0.1" if config.server.host in ("0.0.0.0", "::", "") else config.server.host  # noqa: S104
            )
            url = f"{scheme}://{host}:{config.server.port}"
    if not 1 <= args.parallel <= 16 or not 1 <= args.chunk_lines <= 100_000:
        raise CollectorError("--parallel must be 1-16 and --chunk-lines 1-100000")
    files = args.files or ["-"]
    path = Path(args.checkpoint) if args.checkpoint else None
    path = path or importer.default_checkpoint(args.tenant, args.kind, files)
    checkpoint = importer.Checkpoint.load(path, args.chunk_lines)
    try:
        return importer.run_import(
            files, args.tenant, args.kind, args.format,
            importer.Client(url or "http://127.0.0.1:8080", key), checkpoint,
            out=sys.stdout, err=sys.stderr, progress=False if args.no_progress else None,
            parallel=args.parallel,
        )  # fmt: skip
    except importer.Unavailable as e:
        print(f"collector: {e}; run the same command to resume", file=sys.stderr)
        return importer.EXIT_UNAVAILABLE


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
    s.add_argument(
        "--workers", type=int, default=None,
        help="processes on the port (SO_REUSEPORT): 1 primary + N-1 ingest workers "
        "(default: the usable cores; 1 with [spool] enabled = false)",
    )  # fmt: skip
    s.add_argument("--role", choices=["primary", "ingest"], help=argparse.SUPPRESS)
    s.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    s.set_defaults(func=_serve)
    q = sub.add_parser(
        "sql", help="run one read-only query, through the running service or on the engine"
    )
    q.add_argument("--config", required=True)
    q.add_argument("--format", choices=["json", "csv", "table"], default="json")
    q.add_argument("--key-file", help="a file holding an admin API key (else $COLLECTOR_API_KEY)")
    q.add_argument("query")
    q.set_defaults(func=_sql)
    m = sub.add_parser("migrate", help="apply pending sql/ migrations")
    m.add_argument("--config")
    m.add_argument("--print", action="store_true", help="print the DDL it would run (only SQL)")
    m.add_argument("--cluster", help="with --print: ON CLUSTER DDL for this cluster")
    m.set_defaults(func=_migrate)
    i = sub.add_parser("init", help="create a development config with a fresh API key")
    i.add_argument("--config", required=True)
    i.add_argument(
        "--example",
        default=None,
        help="the config to start from (default: collector.example.toml here, else the checkout's)",
    )
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
    g = sub.add_parser(
        "grants", help="print (and --apply) the ClickHouse roles, users and row policies"
    )
    g.add_argument("--config", required=True)
    g.add_argument("--tenant", help="with --user: an analyst user bound to this tenant")
    g.add_argument("--user", help="the ClickHouse user name to create")
    g.add_argument("--password-file", help="the new user's password (else asked on the terminal)")
    g.add_argument("--cluster", help="ON CLUSTER this cluster (default: storage.cluster)")
    g.add_argument("--apply", action="store_true", help="also run it (ClickHouse server only)")
    g.set_defaults(func=_grants)
    im = sub.add_parser(
        "import",
        help="backfill files (plain, .gz, .zst, - for stdin) through the running service",
        description="Posts the files in chunks through the running service with the key in "
        "COLLECTOR_API_KEY (or --key-file); resumable; rejects listed on stdout as "
        "FILE:LINE<TAB>field<TAB>reason. Exit 0: all accepted, 1: some rejected, 2: refused, "
        "3: service unavailable, 130: interrupted.",
    )
    im.add_argument("files", nargs="*", metavar="FILE", help="files; none or - reads stdin")
    im.add_argument("--tenant", required=True, help="the key's tenant (checked with --config)")
    im.add_argument("--kind", choices=["logs", "devices", "events", "mail-scans"], default="logs")
    im.add_argument(
        "--format", default="auto",
        help="auto (JSON lines or text, told by the first line), ndjson, text, or a text log "
        "format name the service knows (sent as X-Log-Format)",
    )  # fmt: skip
    im.add_argument("--config", help="the service's config: its address, and a check of the key")
    im.add_argument("--url", help="the service (default: from --config, else 127.0.0.1:8080)")
    im.add_argument("--key-file", help="a file holding the ingest key")
    im.add_argument("--checkpoint", help="where progress is kept (default: in this directory)")
    im.add_argument("--chunk-lines", type=int, default=5000, help="records per request")
    im.add_argument("--parallel", type=int, default=2, help="chunks in flight at once")
    im.add_argument("--no-progress", action="store_true", help="no progress bar")
    im.set_defaults(func=_import)
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
