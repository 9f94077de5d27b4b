"""`facility_zip`: a facility's ZIP+4 is stored as its ZIP5 (cut by the value parser)."""

from anonymizer.kinds import KINDS
from anonymizer.operators.facility_zip import FacilityZip
from anonymizer.validate import TimeWindow
from tests.anonymizer.operators.support import DEFAULT, apply, rule, sample

FACILITY = rule("mail_scan", "facility_zip")
RAW = {"imb": "01234567094987654321", "facility_zip": "20260-0001"}


def test_apply_stores_the_parsed_zip5() -> None:
    record = KINDS["mail_scan"].validate(RAW, TimeWindow(0, -(2**62), 2**62))
    assert apply(FACILITY, record) == {"facility_zip": "20260"}


def test_describe_and_outcome() -> None:
    assert FacilityZip().describe(FACILITY, DEFAULT).operator == "truncated"
    assert FacilityZip().outcome(FACILITY, sample("mail_scan", RAW)).detail == "ZIP+4 cut to ZIP5"
    five = {**RAW, "facility_zip": "20260"}
    assert FacilityZip().outcome(FACILITY, sample("mail_scan", five)).operator == "kept"
