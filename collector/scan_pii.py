"""`collector scan-pii`: proof, from the stored data itself, that nothing personal is kept.

Every String column of every table (plain, LowCardinality, Array and Map keys and values) is
scanned with the SAME detectors the write path uses (`anonymizer.detectors`), so the two can
never disagree: per column, ClickHouse pre-filters with the detectors' RE2 candidate patterns
(a superset, plus anything percent-encoded or non-ASCII) and returns the distinct candidates
(bounded); each is then confirmed in Python by the very finder the write path runs. A column a
named operator makes (pseudonyms, prefixes, IMb parts, paths) is checked with the detectors that
apply to it: a pseudonym is a hex digest by design, a path segment is judged by `url.redact`.
Also counted: full IMbs (31 digits or 65 bars) and values equal to any pseudonym input listed in
a sample file. Network prefixes (`a.b.c.0/24`) are not addresses. The scan reports counts per
column and class, never the values found.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from anonymizer.anonymize import NAMED_COLUMNS
from anonymizer.detectors import DETECTOR_NAMES, Detectors
from anonymizer.policy import Policy, default_policy
from collector.sink import Sink
from collector.statements import Statements

# RE2 (ClickHouse `match`): no look-around, so edges are spelled out.
CHECKS: dict[str, str] = {
    "imb_digits": r"(^|[^0-9])[0-9]{31}($|[^0-9])",
    "imb_bars": r"(^|[^ADFT])[ADFT]{65}($|[^ADFT])",
}
# Values the detectors see only after normalization: percent-encoded or non-ASCII text.
_ENCODED = r"%[0-9A-Fa-f]{2}|[^\x00-\x7F]"
CANDIDATE_LIMIT = 20_000  # distinct candidate values confirmed per column
_NAMED = {c: op for cols in NAMED_COLUMNS.values() for c, op in cols.items()}
# Named operators' output: a pseudonym is a hex digest (a dashless UUID shape) and an IMb part
# a digit code by design.
NAMED_DETECTORS = Detectors.build(frozenset(DETECTOR_NAMES) - {"token", "uuid", "id"}, None)
# A 32-hex-digit digest holds 13+ decimal digits in a row (Luhn-valid one time in ten) in about
# one pseudonym in two thousand: only shapes a digest can never take are looked for there.
DIGEST_DETECTORS = Detectors.build(frozenset({"email", "ip"}), None)
_DIGESTS = ("pseudonym", "visitor id")


@dataclass(frozen=True, slots=True)
class Finding:
    table: str
    column: str
    check: str
    rows: int


def _string_expr(column: str, type_: str) -> str | None:
    """An expression giving an Array(String) of the column's scannable values."""
    q = f"`{column}`"
    if type_.startswith("AggregateFunction("):
        return None  # a sketch's binary state: hashes, not text (its inputs are scanned at source)
    if type_.startswith("Map("):
        return f"arrayConcat(mapKeys({q}), mapValues({q}))" if "String" in type_ else None
    if type_.startswith("Array(") and "String" in type_:
        return q
    if type_ in ("String", "LowCardinality(String)", "Nullable(String)", "FixedString"):
        return f"[toString({q})]"
    if "String" in type_:
        return f"[toString({q})]"
    return None


def detectors_for(policy: Policy, column: str) -> tuple[Detectors, bool]:
    """(the detectors the write path applies to the column, whether `+` is a space)."""
    op = _NAMED.get(column)
    if op in ("path", "route"):
        return policy.url.detectors, False
    if op == "query":
        return policy.url.detectors, True
    if op in _DIGESTS:
        return DIGEST_DETECTORS, False
    if op is not None:
        return NAMED_DETECTORS, False
    return policy.pii.detectors, False


def _confirmed(
    sink: Sink, table: str, expr: str, dets: Detectors, plus: bool
) -> dict[str, list[str]]:
    """check -> the distinct values of the column the detectors confirm."""
    patterns = [f"(?:{d.candidate})" for d in dets.detectors] + [_ENCODED]
    rows = sink.query(
        f"SELECT DISTINCT x FROM `{table}` ARRAY JOIN {expr} AS x "
        f"WHERE match(x, {{p:String}}) LIMIT {CANDIDATE_LIMIT}",
        {"p": "|".join(patterns)},
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        value = str(row["x"])
        for name in dets.classes(value, plus):
            found.setdefault(name, []).append(value)
    return found


def scan(
    sink: Sink, samples: list[str] | None = None, policy: Policy | None = None
) -> tuple[list[Finding], int]:
    """(findings, number of columns scanned)."""
    policy = policy or default_policy()
    samples = sorted({s for s in (samples or []) if s})
    columns = sink.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine NOT IN ('MaterializedView', 'View')"
        f"{Statements(sink.cluster).shown_tables()}) ORDER BY table, position"
    )
    findings: list[Finding] = []
    scanned = 0
    for col in columns:
        expr = _string_expr(col["name"], col["type"])
        if expr is None:
            continue
        scanned += 1
        table = col["table"]
        dets, plus = detectors_for(policy, col["name"])
        confirmed = _confirmed(sink, table, expr, dets, plus)
        parts = [
            f"countIf(arrayExists(x -> match(x, {{{name}:String}}), {expr})) AS {name}"
            for name in CHECKS
        ]
        params: dict[str, Any] = dict(CHECKS)
        for name, values in confirmed.items():
            parts.append(
                f"countIf(arrayExists(x -> has({{v_{name}:Array(String)}}, x), {expr})) AS {name}"
            )
            params[f"v_{name}"] = values
        if samples:
            parts.append(
                f"countIf(arrayExists(x -> has({{samples:Array(String)}}, x), {expr})) AS sample"
            )
            params["samples"] = samples
        row = sink.query(f"SELECT {', '.join(parts)} FROM `{table}`", params)[0]
        findings += [
            Finding(table, col["name"], check, int(n)) for check, n in row.items() if int(n)
        ]
    return findings, scanned


def render(findings: list[Finding], scanned: int) -> str:
    if not findings:
        return f"no personal data found in {scanned} string columns"
    width = max(len(f"{f.table}.{f.column}") for f in findings)
    lines = [f"{'column':<{width}}  {'check':<10}  rows", "-" * (width + 20)]
    lines += [f"{f.table + '.' + f.column:<{width}}  {f.check:<10}  {f.rows}" for f in findings]
    lines.append(f"{len(findings)} findings in {scanned} string columns")
    return "\n".join(lines)


LAST_RESULT = "scan_pii_last.json"  # in the data dir: the privacy view shows the last run


def save_last(data_dir: Path, findings: list[Finding], scanned: int) -> None:
    """Keep the result of this run (counts per column and check, never values)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    body = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "scanned_columns": scanned,
        "clean": not findings,
        "findings": [asdict(f) for f in findings],
    }
    tmp = data_dir / (LAST_RESULT + ".tmp")
    tmp.write_bytes(orjson.dumps(body))
    os.replace(tmp, data_dir / LAST_RESULT)


def load_last(data_dir: Path) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = orjson.loads((data_dir / LAST_RESULT).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return loaded
