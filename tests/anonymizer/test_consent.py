"""The consent matrix: each category set x GPC x DNT x policy option."""

import itertools

import pytest

from anonymizer.consent import consent_decision
from anonymizer.policy import ConsentPolicy
from anonymizer.types import Consent

CATEGORY_SETS = [None, frozenset(), frozenset({"essential"}), frozenset({"essential", "preference"}),
                 frozenset({"analytics"}), frozenset({"essential", "analytics", "preference"})]  # fmt: skip


@pytest.mark.parametrize(
    ("categories", "gpc", "dnt", "without", "honour_gpc", "honour_dnt"),
    list(
        itertools.product(
            CATEGORY_SETS,
            [False, True],
            [False, True],
            ["drop", "strip_identifiers"],
            [True, False],
            [True, False],
        )
    ),
)
def test_matrix(
    categories: frozenset[str] | None,
    gpc: bool,
    dnt: bool,
    without: str,
    honour_gpc: bool,
    honour_dnt: bool,
) -> None:
    policy = ConsentPolicy(without, honour_gpc, honour_dnt)  # type: ignore[arg-type]
    decision, reason = consent_decision(policy, Consent(categories, gpc, dnt))
    if honour_gpc and gpc:
        expected_reason = "gpc"  # an opt-out wins over any consent given
    elif honour_dnt and dnt:
        expected_reason = "dnt"
    elif categories is None or "analytics" not in categories:
        expected_reason = "no_consent"  # silence is not consent
    else:
        expected_reason = ""
    assert reason == expected_reason
    assert decision == ("keep" if not expected_reason else without)
