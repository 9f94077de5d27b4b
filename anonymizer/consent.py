"""Consent and opt-out signals decide whether an analytics record keeps its identifiers.

Essential records (access logs, devices, mail scans) are not analytics and are not gated here;
usage events are. A record with no consent information is treated as having no analytics
consent: the policy decides, and the safe reading of silence is "no".
"""

from __future__ import annotations

from typing import Literal

from anonymizer.policy import ConsentPolicy
from anonymizer.types import Consent

CATEGORIES = frozenset({"essential", "analytics", "preference"})
Decision = Literal["keep", "strip_identifiers", "drop"]


def consent_decision(policy: ConsentPolicy, consent: Consent) -> tuple[Decision, str]:
    """(decision, reason): reason is `""` when kept, else `gpc`, `dnt` or `no_consent`."""
    if policy.honour_gpc and consent.gpc:
        reason = "gpc"
    elif policy.honour_dnt and consent.dnt:
        reason = "dnt"
    elif consent.categories is None or "analytics" not in consent.categories:
        reason = "no_consent"
    else:
        return "keep", ""
    return policy.analytics_without_consent, reason
