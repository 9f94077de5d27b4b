"""`query`: only allow-listed parameters survive, their values redacted."""

from anonymizer.operators.query import Query
from anonymizer.types import AccessRecord
from tests.anonymizer.operators.support import DEFAULT, apply, policy, rule, sample

QUERY = rule("access_log", "path (query)")
RECORD = AccessRecord(
    time_ms=0, ip=None, path="/s?q=shoes&utm_source=jane@example.com;token=x&utm_medium=mail#f"
)  # type: ignore[arg-type]


def test_apply_keeps_allow_listed_parameters_with_redacted_values() -> None:
    assert apply(QUERY, RECORD) == {"query": "utm_source={email}&utm_medium=mail"}
    assert apply(QUERY, RECORD, policy('[url]\nkeep_query_params = ["q"]\n')) == {
        "query": "q=shoes"
    }
    assert apply(QUERY, RECORD, policy("[url]\nkeep_query_params = []\n")) == {"query": ""}


def test_describe_effect_and_outcome() -> None:
    empty = policy("[url]\nkeep_query_params = []\n")
    a = Query().describe(QUERY, empty)
    assert (a.operator, a.how, a.rule) == (
        "dropped", "the allowlist is empty: every parameter is dropped", "url.keep_query_params",
    )  # fmt: skip
    assert Query().describe(QUERY, DEFAULT).operator == "dropped"  # the rule's own: by default
    assert Query().effect(
        "url.keep_query_params", DEFAULT, policy('[url]\nkeep_query_params = ["q"]\n')
    ) == (
        "query parameters now kept: q; query parameters now dropped: utm_campaign, utm_medium, utm_source"
    )
    out = Query().outcome(
        QUERY, sample("access_log", {"ip": "192.0.2.1", "path": "/s?q=1&utm_source=a"})
    )
    assert (out.operator, out.detail) == ("dropped", "dropped q; kept utm_source")
