"""Typed records that flow into the anonymizer and the context it needs.

The full client IP lives only in these in-memory objects: it is needed for GeoIP and is gone
once `anonymize_access` has produced the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from anonymizer.pseudonym import PseudonymKey


@dataclass(frozen=True, slots=True)
class ClientIp:
    """A parsed client address: version 4 or 6, packed bytes, canonical text."""

    version: int
    packed: bytes
    text: str

    def __repr__(self) -> str:  # never let a full address slip into a log line via repr()
        return f"ClientIp(version={self.version}, text=<redacted>)"


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One validated access-log record, before enrichment and anonymization."""

    time_ms: int
    ip: ClientIp
    method: str = ""
    host: str = ""
    path: str = ""
    status: int = 0
    bytes: int = 0
    duration_ms: float | None = None
    referrer: str = ""
    user_agent: str = ""
    user_id: str = ""
    session_id: str = ""
    service: str = ""

    def __repr__(self) -> str:
        return f"AccessRecord(time_ms={self.time_ms}, <personal fields redacted>)"


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What a user-agent string says, reduced to dimensions that are not identifying."""

    browser_family: str = "Other"
    browser_major: str = ""
    os_family: str = "Other"
    os_version: str = ""
    device_family: str = "Other"
    device_brand: str = ""
    device_model: str = ""
    is_mobile: bool = False
    is_tablet: bool = False
    is_pc: bool = False
    is_bot: bool = False


UNKNOWN_USER_AGENT = UserAgentInfo()


@dataclass(frozen=True, slots=True)
class GeoInfo:
    """Location looked up on the full IP; generalized by policy before it is stored."""

    country: str = ""
    region: str = ""
    city: str = ""


UNKNOWN_GEO = GeoInfo()


@dataclass(frozen=True, slots=True)
class Enrichment:
    """Facts derived from a record before its personal fields are cut."""

    user_agent: UserAgentInfo = UNKNOWN_USER_AGENT
    geo: GeoInfo = UNKNOWN_GEO


@dataclass(frozen=True, slots=True)
class TenantContext:
    """Who the record belongs to and the key in force for its pseudonyms."""

    tenant_id: str
    plan: str
    key: PseudonymKey
