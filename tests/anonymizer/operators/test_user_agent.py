"""`user_agent`: the parsed dimensions (enrichment) are stored, never the string."""

from anonymizer.operators.user_agent import UserAgent
from anonymizer.types import AccessRecord, DeviceRecord, Enrichment, UserAgentInfo
from tests.anonymizer.operators.support import DEFAULT, apply, rule, sample

PARSED = Enrichment(
    UserAgentInfo("Chrome", "120", "Windows", "10", "Other", "", "", False, False, True, False)
)
ACCESS = rule("access_log", "user_agent")
DEVICE = rule("device", "user_agent")


def test_apply_stores_the_parsed_dimensions_the_rule_names() -> None:
    row = apply(
        ACCESS, AccessRecord(time_ms=0, ip=None, user_agent="Mozilla/5.0 secret"), enrichment=PARSED
    )  # type: ignore[arg-type]
    assert row["browser_family"] == "Chrome" and row["os_version"] == "10" and row["is_pc"] is True
    assert "Mozilla/5.0 secret" not in row.values()
    device = apply(
        DEVICE, DeviceRecord(time_ms=0, device_id="d", user_agent="x"), enrichment=PARSED
    )
    assert device == {"browser_family": "Chrome", "browser_major": "120", "is_bot": False}


def test_a_device_without_an_agent_claims_no_family() -> None:
    device = apply(DEVICE, DeviceRecord(time_ms=0, device_id="d"), enrichment=Enrichment())
    assert device["browser_family"] == ""
    access = apply(ACCESS, AccessRecord(time_ms=0, ip=None), enrichment=Enrichment())  # type: ignore[arg-type]
    assert access["browser_family"] == "Other"  # an access log keeps the parser's default


def test_describe_and_outcome() -> None:
    assert UserAgent().describe(ACCESS, DEFAULT).operator == "generalized"
    raw = {"ip": "192.0.2.1", "user_agent": "UA"}
    assert (
        UserAgent().outcome(ACCESS, sample("access_log", raw)).detail
        == "user-agent parsing not run here"
    )
