"""The pipeline fed in slices gives exactly the outcome of one pass: same rows, same errors at the
same indexes, same counts, however small the slices."""

from datetime import UTC, datetime
from typing import Any

from collector.appkeys import PIPELINE
from collector.auth import Tenant
from collector.decode import Failed, decode_combined
from collector.kinds import ACCESS_LOG
from collector.line_formats import LineReader, TextOptions
from tests.conftest import AppFactory, corpus_lines


async def test_slices_give_the_outcome_of_one_pass(start: AppFactory) -> None:
    client = await start()
    pipeline = client.app[PIPELINE]
    tenant = Tenant("acme", "standard", "k")
    now = datetime.now(UTC)
    lines = corpus_lines()[:300] + ["not a log line"] * 5 + corpus_lines()[300:400]
    body = ("\n".join(lines) + "\n").encode()

    whole = pipeline.process(tenant, [(ACCESS_LOG, parse_or_fail(line)) for line in lines], now)

    run = pipeline.start(tenant, now)
    decoded = decode_combined(body, 10_000)
    pairs = ((ACCESS_LOG, item) for item in decoded.items)
    slices = 1
    while not run.feed(pairs, budget_s=0.0):  # after every record, the budget is spent
        slices += 1
    sliced = run.out

    # one record per slice: a costly record (~5 ms) never makes a slice of 16 (~100 ms)
    assert slices == len(lines) + 1
    assert sliced.rows["access_log"] and len(sliced.rows["access_log"]) == 400
    assert sliced.errors == whole.errors and [e["index"] for e in sliced.errors] == list(
        range(300, 305)
    )
    assert (sliced.accepted, sliced.received, sliced.rejected) == (
        whole.accepted,
        whole.received,
        whole.rejected,
    )
    # rows are equal but for the per-request random parts (none in access_log rows)
    assert sliced.rows == whole.rows


def parse_or_fail(line: str) -> Any:
    from anonymizer.errors import RecordInvalid

    try:
        return LineReader(TextOptions()).record(line)
    except RecordInvalid as e:
        return Failed(e)
