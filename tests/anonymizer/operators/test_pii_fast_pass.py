"""The free-text pass a plan runs on every row (`Pii.finish`: free-text columns picked once, the
detectors' memo read directly) must store exactly what the general pass (`detect_free_text`:
every key of the row, each value through `Detectors.redact`) stores, and refuse the same record
with the same error, on the hostile corpus and on any text hypothesis finds."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer.errors import RecordInvalid
from anonymizer.kinds import KINDS
from anonymizer.operators.pii import NAMED_COLUMNS, Pii, detect_free_text
from anonymizer.policy import Policy
from tests import hostile
from tests.anonymizer.operators.support import DEFAULT, policy

REJECT = policy('[pii]\naction = "reject"\n')
PER_FIELD = policy('[pii]\ndigits = 5\n[pii.fields]\nuser_agent = "reject"\n')
POLICIES = (DEFAULT, REJECT, PER_FIELD)
TABLES = tuple(k.table for k in KINDS.values())
TEXTS = [h.text for h in hostile.corpus()] + [
    "Chrome", "Mac OS X", "GET", "", "10.9", "call +49 30 1234567 now", "a" * 40,
]  # fmt: skip


def _row(table: str, texts: list[str]) -> dict[str, Any]:
    """A row of `table` as a plan makes it (every column, in order), free text in every text
    column, a map where the table has one, numbers and flags where a row has them."""
    kind = next(k for k in KINDS.values() if k.table == table)
    row: dict[str, Any] = dict.fromkeys(kind.columns, "")
    for i, column in enumerate(kind.columns):
        text = texts[i % len(texts)]
        row[column] = text
    row["time"] = 1.5
    if "status" in row:
        row["status"], row["is_bot"], row["duration_ms"] = 200, False, None
    if "properties" in row:
        row["properties"] = {texts[0][:64] or "k": texts[-1], "n": 3}
    return row


def _outcome(finish: Any, row: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "row", finish(dict(row))
    except RecordInvalid as e:
        return "refused", (e.field, e.error)


def _agree(pol: Policy, table: str, row: dict[str, Any]) -> None:
    fast = Pii().finish(pol, table)
    assert fast is not None
    got = _outcome(fast, row)
    want = _outcome(lambda r: detect_free_text(pol, table, r), row)
    assert got == want
    if got[0] == "row":  # the named columns are never touched
        assert all(got[1][c] == row[c] for c in NAMED_COLUMNS[table] if c in row)


@pytest.mark.parametrize("pol", POLICIES, ids=("replace", "reject", "per-field"))
@pytest.mark.parametrize("table", TABLES)
def test_fast_pass_agrees_on_the_hostile_corpus(pol: Policy, table: str) -> None:
    for start in range(0, len(TEXTS), 7):
        _agree(pol, table, _row(table, TEXTS[start:] + TEXTS[:start]))


@pytest.mark.parametrize("table", TABLES)
def test_a_row_with_a_column_no_template_has_is_still_scanned(table: str) -> None:
    row = _row(table, ["plain"])
    row["added_later"] = "mail jane@example.com"
    _agree(DEFAULT, table, row)
    finish = Pii().finish(DEFAULT, table)
    assert finish is not None
    assert finish(dict(row))["added_later"] == "mail {email}"


def test_memo_answers_are_what_a_fresh_scan_gives() -> None:
    dets = DEFAULT.pii.detectors
    for text in TEXTS:
        if text:
            dets.redact(text)
            assert dets.memo()[text] == dets._scan(text, False)
            assert dets.result(text) == dets._scan(text, False)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(max_size=40), min_size=1, max_size=12),
    st.sampled_from(TABLES),
    st.sampled_from(POLICIES),
)
def test_fast_pass_agrees_on_any_text(texts: list[str], table: str, pol: Policy) -> None:
    _agree(pol, table, _row(table, texts))
