"""`pseudonym`: an identifier becomes a keyed token, or nothing when the policy does not list it;
an event's only when the consent gate kept identifiers."""

from anonymizer.imb import parse_imb
from anonymizer.operators.pseudonym import Pseudonym
from anonymizer.pseudonym import pseudonymize
from anonymizer.types import AccessRecord, EventRecord, MailScanRecord
from tests.anonymizer.operators.support import DEFAULT, KEY, apply, policy, rule, sample

USER = rule("access_log", "user_id")
ONLY_SESSION = policy('[identifiers]\nfields = ["session_id"]\n')


def test_apply_pseudonymizes_under_the_tenants_key() -> None:
    record = AccessRecord(time_ms=0, ip=None, user_id="jane")  # type: ignore[arg-type]
    assert apply(USER, record) == {"user_pseudonym": pseudonymize(KEY, "user_id", "jane")}
    assert apply(USER, AccessRecord(time_ms=0, ip=None)) == {"user_pseudonym": ""}  # type: ignore[arg-type]
    assert Pseudonym().bind(USER, ONLY_SESSION) is None


def test_a_serial_is_pseudonymized_with_its_mailer_id() -> None:
    imb = parse_imb("0123456709498765432101234567891")
    row = apply(rule("mail_scan", "imb (serial)"), MailScanRecord(time_ms=0, imb=imb))
    assert row == {"serial_pseudonym": pseudonymize(KEY, "imb.serial", imb.mailer_id + imb.serial)}


def test_an_event_keeps_its_pseudonym_only_with_consent() -> None:
    event_user = rule("event", "user_id")
    record = EventRecord(time_ms=0, event="e", user_id="jane")
    kept = apply(event_user, record, row={"identifiers_stripped": False})
    assert kept == {"user_pseudonym": pseudonymize(KEY, "user_id", "jane")}
    assert apply(event_user, record, row={"identifiers_stripped": True}) == {"user_pseudonym": ""}


def test_describe_effect_and_outcome() -> None:
    a = Pseudonym().describe(USER, ONLY_SESSION)
    assert (a.operator, a.rule) == ("dropped", "identifiers.fields")
    assert a.how == "user_id is not in identifiers.fields: the column stays empty"
    assert Pseudonym().describe(USER, DEFAULT).operator == "pseudonymized"
    assert Pseudonym().effect("identifiers.fields", DEFAULT, ONLY_SESSION) == (
        "identifiers now dropped (were pseudonymized): device_id, imb.serial, user_id"
    )
    daily = policy('[identifiers]\nrotation = "daily"\n')
    assert (
        Pseudonym()
        .effect("identifiers.rotation", DEFAULT, daily)
        .startswith("a pseudonym links one person's rows across a day instead of a month")
    )
    stripped = sample("event", {"event": "e", "user_id": "jane", "consent": []})
    out = Pseudonym().outcome(rule("event", "user_id"), stripped)
    assert (out.operator, out.rule) == ("dropped", "consent.analytics_without_consent")
