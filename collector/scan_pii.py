"""`collector scan-pii`: proof, from the stored data itself, that nothing personal is kept.

Every String column of every table (plain, LowCardinality, Array and Map values) is scanned, in
ClickHouse, for full IPv4/IPv6 addresses, email addresses, phone numbers, full IMbs (31 digits or
65 bars), and values equal to any pseudonym input listed in a sample file (the raw user ids,
device ids, serials a sender used). Network prefixes (`a.b.c.0/24`) are not addresses and do not
count. The scan reports counts per column, never the values found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.sink import Sink

# RE2 (ClickHouse `match`): no look-around, so edges are spelled out.
CHECKS: dict[str, str] = {
    "ipv4": r"(^|[^0-9.])([0-9]{1,3}\.){3}[0-9]{1,3}($|[^0-9./])",
    "ipv6": r"(^|[^0-9A-Fa-f:])(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|[0-9A-Fa-f:]*::[0-9A-Fa-f:]*[0-9A-Fa-f])($|[^0-9A-Fa-f:/])",
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "phone": r"\+[0-9][0-9 ()./-]{7,}[0-9]",
    "imb_digits": r"(^|[^0-9])[0-9]{31}($|[^0-9])",
    "imb_bars": r"(^|[^ADFT])[ADFT]{65}($|[^ADFT])",
}


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


def scan(sink: Sink, samples: list[str] | None = None) -> tuple[list[Finding], int]:
    """(findings, number of columns scanned)."""
    samples = sorted({s for s in (samples or []) if s})
    columns = sink.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine NOT IN ('MaterializedView', 'View')) ORDER BY table, position"
    )
    findings: list[Finding] = []
    scanned = 0
    for col in columns:
        expr = _string_expr(col["name"], col["type"])
        if expr is None:
            continue
        scanned += 1
        parts = [
            f"countIf(arrayExists(x -> match(x, {{{name}:String}}), {expr})) AS {name}"
            for name in CHECKS
        ]
        params: dict[str, Any] = dict(CHECKS)
        if samples:
            parts.append(
                f"countIf(arrayExists(x -> has({{samples:Array(String)}}, x), {expr})) AS sample"
            )
            params["samples"] = samples
        row = sink.query(f"SELECT {', '.join(parts)} FROM `{col['table']}`", params)[0]
        findings += [
            Finding(col["table"], col["name"], check, int(n)) for check, n in row.items() if int(n)
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
