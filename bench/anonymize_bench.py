"""In-process throughput of the per-record write path without HTTP or storage: the access-log
corpus as one JSON batch -> decode (orjson) -> validate -> anonymize (the kind's row builder),
with the user-agent enrichment parsed beforehand (it is enrichment, not anonymization) under the
shipped policy.toml (`visitor_id = "daily"`: every operator runs). Prints the best records/s.

Usage: .venv/bin/python bench/anonymize_bench.py [--repeat 7] [--copies 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    from conftest import corpus_lines

    from anonymizer.kinds import KINDS
    from anonymizer.policy import parse_policy
    from anonymizer.pseudonym import DAY_MS, PseudonymKey
    from anonymizer.types import Enrichment, TenantContext
    from anonymizer.validate import TimeWindow
    from collector.combined import parse_combined
    from collector.enrich import UserAgentParser

    args = argparse.ArgumentParser()
    args.add_argument("--repeat", type=int, default=7)
    args.add_argument("--copies", type=int, default=3)
    opts = args.parse_args()
    raws = [parse_combined(line) for line in corpus_lines()] * opts.copies
    body = orjson.dumps(raws)
    kind = KINDS["access_log"]
    policy = parse_policy((REPO / "policy.toml").read_text())  # visitor_id = "daily"
    now = int(time.time() * 1000)
    window = TimeWindow.around(now, 395)
    salts = {d: bytes(32) for d in range(now // DAY_MS - 10, now // DAY_MS + 2)}
    ctx = TenantContext("bench", "standard", PseudonymKey("2026-11", bytes(32)), salts)
    uas = UserAgentParser(10_000)
    agents = {str(r.get("user_agent", "")) for r in raws}
    enrich = {ua: Enrichment(uas.parse(ua)) for ua in agents}
    pairs = [(kind.validate(raw, window), enrich[str(raw.get("user_agent", ""))]) for raw in raws]
    best = best_build = 0.0
    for _ in range(opts.repeat):
        t0 = time.perf_counter()
        for raw in orjson.loads(body):
            record = kind.validate(raw, window)
            kind.build(policy, ctx, record, enrich[str(raw.get("user_agent", ""))])
        best = max(best, len(raws) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for record, enrichment in pairs:
            kind.build(policy, ctx, record, enrichment)
        best_build = max(best_build, len(raws) / (time.perf_counter() - t0))
    print(
        f"{len(raws)} records, best of {opts.repeat}: decode+validate+anonymize "
        f"{best:,.0f} records/s ({1e6 / best:.2f} us/record); anonymize alone "
        f"{best_build:,.0f} records/s ({1e6 / best_build:.2f} us/record)"
    )


if __name__ == "__main__":
    main()
