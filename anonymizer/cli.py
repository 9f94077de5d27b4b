"""`anonymizer check | explain | diff | privacy-doc`: the privacy team's command line.

The only module of the package that touches files: it reads the files it is named and prints
(and `privacy-doc --output` writes the one file it is given). Everything else is the library.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anonymizer.ddl import SchemaMismatch
from anonymizer.errors import AnonymizerError, PolicyError, RecordInvalid
from anonymizer.explain import (
    explain,
    explain_diff,
    render_diff,
    render_text,
    to_json,
)
from anonymizer.kinds import KIND_NAMES, KINDS, KindName
from anonymizer.policy import Policy, parse_policy
from anonymizer.privacy_doc import render_privacy_doc


class _Failed(Exception):
    """A message for stderr and exit status 1."""


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
        raise _Failed(f"{path}: cannot read: {reason}") from None


def _policy(path: str) -> Policy:
    try:
        return parse_policy(_read(path))
    except PolicyError as e:
        raise _Failed(f"{path}: {e}") from None


def _check(args: argparse.Namespace) -> int:
    policy = _policy(args.policy)
    print(f"ok: version {policy.version}")
    return 0


def detect_kind(record: dict[str, Any], name: str) -> KindName:
    """The one kind whose required fields the record carries and whose rules name all its fields;
    anything else (none, or several) is an error asking for `--kind`: guessing one would explain
    a record as something it is not."""
    fits = [
        k.name
        for k in KINDS.values()
        if all(f in record for f in k.required) and k.fields.issuperset(record)
    ]
    if len(fits) == 1:
        return fits[0]
    found = f"it fits {', '.join(fits)}" if fits else "it fits no kind"
    raise _Failed(
        f"{name}: cannot tell the record's kind from its fields ({found}); "
        f"give --kind ({', '.join(KIND_NAMES)})"
    )


def _explain(args: argparse.Namespace) -> int:
    policy = _policy(args.policy)
    try:
        record: Any = json.loads(_read(args.record))
    except json.JSONDecodeError as e:  # the message names a position, never the content
        raise _Failed(f"{args.record}: not valid JSON: {e}") from None
    if not isinstance(record, dict):
        raise _Failed(f"{args.record}: a record must be one JSON object")
    kind = args.kind or detect_kind(record, args.record)
    try:
        explanation = explain(policy, kind, record)
    except RecordInvalid as e:
        raise _Failed(
            f"{args.record}: the collector would reject this {kind} record: {e}"
        ) from None
    if args.json:
        print(json.dumps(to_json(explanation), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_text(explanation))
    return 0


def _diff(args: argparse.Namespace) -> int:
    old, new = _policy(args.old), _policy(args.new)
    sys.stdout.write(render_diff(explain_diff(old, new)))
    return 0


def _privacy_doc(args: argparse.Namespace) -> int:
    policy = _policy(args.policy)
    sql_dir = Path(args.sql_dir)
    if not sql_dir.is_dir():
        raise _Failed(f"{sql_dir}: not a directory")
    sql = {p.name: _read(str(p)) for p in sorted(sql_dir.glob("*.sql"))}
    if not sql:
        raise _Failed(f"{sql_dir}: no .sql files")
    try:
        doc = render_privacy_doc(policy, sql)
    except SchemaMismatch as e:
        raise _Failed(str(e)) from None
    if args.output is None:
        sys.stdout.write(doc)
        return 0
    try:
        Path(args.output).write_text(doc, encoding="utf-8")
    except OSError as e:
        raise _Failed(f"{args.output}: cannot write: {e.strerror}") from None
    print(f"wrote {args.output}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anonymizer", description="Check, explain and document the anonymization policy."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("check", help="validate a policy file")
    c.add_argument("policy", metavar="POLICY")
    c.set_defaults(run=_check)
    e = sub.add_parser("explain", help="what the policy does to each field of one record")
    e.add_argument("policy", metavar="POLICY")
    e.add_argument("record", metavar="RECORD.json")
    e.add_argument(
        "--kind", choices=KIND_NAMES, help="the record's kind; without it, told by its fields"
    )
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.set_defaults(run=_explain)
    d = sub.add_parser("diff", help="what changes between two policies")
    d.add_argument("old", metavar="OLD")
    d.add_argument("new", metavar="NEW")
    d.set_defaults(run=_diff)
    g = sub.add_parser("privacy-doc", help="generate docs/privacy.md from the policy and sql/")
    g.add_argument("policy", metavar="POLICY")
    g.add_argument("sql_dir", metavar="SQL_DIR")
    g.add_argument("--output", metavar="FILE", help="write here instead of printing")
    g.set_defaults(run=_privacy_doc)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage error (or --help)
        return e.code if isinstance(e.code, int) else 2
    try:
        status: int = args.run(args)
    except (_Failed, AnonymizerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return status
