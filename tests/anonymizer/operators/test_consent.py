"""`consent`: the gate that decides, before any field is made, whether an event is stored with
its identifiers, stripped of them, or not at all."""

import pytest

from anonymizer.operators.consent import Consent
from anonymizer.types import Consent as Signals
from anonymizer.types import EventRecord
from tests.anonymizer.operators.support import DEFAULT, policy, rule, sample

CONSENT = rule("event", "consent")
ANALYTICS = frozenset({"analytics"})


@pytest.mark.parametrize(
    ("signals", "text", "stored", "row"),
    [
        (Signals(ANALYTICS), "", (True, ""), {"identifiers_stripped": False, "consent_reason": ""}),
        (Signals(None), "", (True, "no_consent"),
         {"identifiers_stripped": True, "consent_reason": "no_consent"}),
        (Signals(ANALYTICS, gpc=True), "", (True, "gpc"),
         {"identifiers_stripped": True, "consent_reason": "gpc"}),
        (Signals(ANALYTICS, gpc=True), "[consent]\nhonour_gpc = false\n", (True, ""),
         {"identifiers_stripped": False, "consent_reason": ""}),
        (Signals(ANALYTICS, dnt=True), '[consent]\nanalytics_without_consent = "drop"\n',
         (False, "dnt"), {}),
    ],
)  # fmt: skip
def test_the_gate_decides_for_the_record(
    signals: Signals, text: str, stored: tuple[bool, str], row: dict[str, object]
) -> None:
    gate = Consent().gate(CONSENT, policy(text))
    out: dict[str, object] = {}
    assert gate(EventRecord(time_ms=0, event="e", consent=signals), out) == stored
    assert out == row
    assert Consent().bind(CONSENT, DEFAULT) is None  # a gate, not a step


def test_effect_and_outcome() -> None:
    drop = policy('[consent]\nanalytics_without_consent = "drop"\n')
    assert (
        Consent()
        .effect("consent.analytics_without_consent", DEFAULT, drop)
        .endswith("are no longer stored at all")
    )
    no_gpc = policy("[consent]\nhonour_gpc = false\n")
    assert Consent().effect("consent.honour_gpc", DEFAULT, no_gpc) == (
        "the GPC signal is now ignored: analytics consent alone decides"
    )
    out = Consent().outcome(CONSENT, sample("event", {"event": "e", "consent": []}))
    assert out.detail == "identifiers stripped: no_consent"
