"""`route`: the stored (redacted) path grouped into its route template."""

from anonymizer.operators.route import Route
from anonymizer.types import AccessRecord
from tests.anonymizer.operators.support import DEFAULT, apply, rule, sample

ROUTE = rule("access_log", "path (route)")


def test_apply_groups_the_stored_path() -> None:
    record = AccessRecord(time_ms=0, ip=None)  # type: ignore[arg-type]
    row = apply(ROUTE, record, row={"path": "/orders/42/items/{email}/deadbeef00"})
    assert row == {"route": "/orders/{id}/items/{id}/{id}"}
    assert apply(ROUTE, record, row={"path": "/about"}) == {"route": "/about"}


def test_apply_on_an_event_reads_its_own_path_column() -> None:
    record = AccessRecord(time_ms=0, ip=None)  # type: ignore[arg-type]
    assert apply(rule("event", "url (route)"), record, row={"url_path": "/a/7"}) == {
        "url_route": "/a/{id}"
    }


def test_describe_and_outcome() -> None:
    assert Route().describe(ROUTE, DEFAULT).operator == "generalized"
    out = Route().outcome(ROUTE, sample("access_log", {"ip": "192.0.2.1", "path": "/o/42"}))
    assert (out.operator, out.detail) == ("generalized", "segments grouped as {id}")
    assert (
        Route().outcome(ROUTE, sample("access_log", {"ip": "192.0.2.1", "path": "/o"})).operator
        == "kept"
    )
