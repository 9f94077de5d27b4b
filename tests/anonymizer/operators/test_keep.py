"""`keep`: a checked value stored as it is (a status, a byte count, a part of the IMb)."""

from anonymizer.imb import parse_imb
from anonymizer.operators.keep import Keep
from anonymizer.types import AccessRecord, MailScanRecord
from tests.anonymizer.operators.support import DEFAULT, apply, rule


def test_apply_copies_the_value_or_the_named_part() -> None:
    record = AccessRecord(time_ms=0, ip=None, status=404, bytes=12, duration_ms=None)  # type: ignore[arg-type]
    assert apply(rule("access_log", "status"), record) == {"status": 404}
    assert apply(rule("access_log", "duration_ms"), record) == {"duration_ms": None}
    imb = parse_imb("0123456709498765432101234567891")
    mail = MailScanRecord(time_ms=0, imb=imb)
    assert apply(rule("mail_scan", "imb (mailer id)"), mail) == {"mailer_id": imb.mailer_id}


def test_it_stores_through_the_plans_copy_and_binds_no_step() -> None:
    status = rule("access_log", "status")
    assert Keep().stores(status, DEFAULT) == {"status": "status"}
    assert Keep().stores(rule("mail_scan", "imb (barcode id)"), DEFAULT) == {
        "barcode_id": "imb.barcode_id"
    }
    assert Keep().bind(status, DEFAULT) is None
    assert Keep().describe(status, DEFAULT).operator == "kept"
