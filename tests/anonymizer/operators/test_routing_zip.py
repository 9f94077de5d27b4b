"""`routing_zip`: an IMb routing code (ZIP+4+delivery point) is cut to `mail.routing_zip`."""

import pytest

from anonymizer.imb import parse_imb
from anonymizer.operators.routing_zip import RoutingZip
from anonymizer.types import MailScanRecord
from tests.anonymizer.operators.support import DEFAULT, apply, policy, rule, sample

ZIP = rule("mail_scan", "imb (routing code)")
TRACKING = "01234567094987654321"


@pytest.mark.parametrize(
    ("routing", "keep", "stored"),
    [("01234567891", "zip5", "01234"), ("01234567891", "zip3", "012"), ("012345678", "zip5", "01234"),
     ("", "zip5", ""), ("01234567891", "none", "")],
)  # fmt: skip
def test_apply_cuts_the_routing_code(routing: str, keep: str, stored: str) -> None:
    record = MailScanRecord(time_ms=0, imb=parse_imb(TRACKING + routing))
    assert apply(ZIP, record, policy(f'[mail]\nrouting_zip = "{keep}"\n')) == {
        "routing_zip": stored
    }


def test_describe_effect_and_outcome() -> None:
    none = policy('[mail]\nrouting_zip = "none"\n')
    assert RoutingZip().bind(ZIP, none) is None
    a = RoutingZip().describe(ZIP, none)
    assert (a.operator, a.how) == ("dropped", "no part of the routing code is stored")
    assert RoutingZip().effect(
        "mail.routing_zip", DEFAULT, policy('[mail]\nrouting_zip = "zip3"\n')
    ) == ("the IMb routing code is kept as zip3 instead of zip5 (coarser: less identifying)")
    out = RoutingZip().outcome(ZIP, sample("mail_scan", {"imb": TRACKING + "01234567891"}))
    assert (out.operator, out.detail) == ("truncated", "11 digits cut to 5")
