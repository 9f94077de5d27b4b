"""`visitor_id`: a keyed hash of address and agent under the record's day salt, if it exists."""

from dataclasses import replace

from anonymizer.ip import parse_ip
from anonymizer.operators.visitor_id import VisitorId
from anonymizer.pseudonym import DAY_MS, daily_visitor_id
from anonymizer.types import AccessRecord
from tests.anonymizer.operators.support import CTX, DAY, DEFAULT, SALT, apply, policy, rule

VISITOR = rule("access_log", "ip (visitor id)")
DAILY = policy('[identifiers]\nvisitor_id = "daily"\n')
IP = parse_ip("192.0.2.1")
RECORD = AccessRecord(time_ms=DAY * DAY_MS + 5, ip=IP, user_agent="UA/1")


def test_apply_hashes_address_and_agent_under_the_days_salt() -> None:
    expected = daily_visitor_id(SALT, "acme", IP.packed, "UA/1")
    assert apply(VISITOR, RECORD, DAILY) == {"visitor_id": expected}
    other_agent = replace(RECORD, user_agent="UA/2")
    assert apply(VISITOR, other_agent, DAILY)["visitor_id"] not in ("", expected)


def test_no_salt_no_address_or_policy_none_store_nothing() -> None:
    assert apply(VISITOR, replace(RECORD, time_ms=0), DAILY) == {"visitor_id": ""}  # salt gone
    assert apply(VISITOR, replace(RECORD, ip=None), DAILY) == {"visitor_id": ""}
    assert apply(VISITOR, RECORD, DAILY, ctx=replace(CTX, visitor_salts={})) == {"visitor_id": ""}
    assert VisitorId().bind(VISITOR, DEFAULT) is None


def test_describe_and_effect() -> None:
    a = VisitorId().describe(VISITOR, DEFAULT)
    assert (a.operator, a.rule) == ("dropped", "identifiers.visitor_id")
    assert VisitorId().describe(VISITOR, DAILY).operator == "pseudonymized"
    assert VisitorId().effect("identifiers.visitor_id", DAILY, DEFAULT) == (
        "no visitor id is stored any more"
    )
    assert "linkable within one day only" in VisitorId().effect(
        "identifiers.visitor_id", DEFAULT, DAILY
    )
