"""Pure anonymization library: a policy plus a record gives a row that is safe to store.

No I/O happens here, so the privacy team can read and test every rule on its own.
"""

from anonymizer.anonymize import anonymize_access
from anonymizer.errors import AnonymizerError, InvalidValueError, PolicyError
from anonymizer.policy import Policy, parse_policy
from anonymizer.pseudonym import PseudonymKey
from anonymizer.types import (
    AccessRecord,
    ClientIp,
    Enrichment,
    GeoInfo,
    TenantContext,
    UserAgentInfo,
)

__all__ = [
    "AccessRecord",
    "AnonymizerError",
    "ClientIp",
    "Enrichment",
    "GeoInfo",
    "InvalidValueError",
    "Policy",
    "PolicyError",
    "PseudonymKey",
    "TenantContext",
    "UserAgentInfo",
    "anonymize_access",
    "parse_policy",
]
