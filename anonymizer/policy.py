"""The privacy team's policy file, parsed once into a frozen, pre-compiled `Policy`.

Validation is strict: an unknown section or key is an error (a misspelt rule must never silently
mean "no rule"), and every error names the key and, where it can be found, the line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from anonymizer.detectors import ALL, DEFAULT_DIGITS, Detectors
from anonymizer.errors import PolicyError
from anonymizer.geo import GRANULARITIES, Granularity
from anonymizer.toml_reader import TomlTable, line_of
from anonymizer.url import UrlScrubber

Rotation = Literal["never", "daily", "monthly"]
VisitorId = Literal["none", "daily"]
VISITOR_IDS: tuple[VisitorId, ...] = ("none", "daily")
UnknownFields = Literal["reject", "drop"]
UNKNOWN_FIELDS: tuple[UnknownFields, ...] = ("reject", "drop")
DEFAULT_UNKNOWN_FIELDS: UnknownFields = "reject"
RoutingZip = Literal["none", "zip3", "zip5"]
ROUTING_ZIPS: tuple[RoutingZip, ...] = ("none", "zip3", "zip5")
WithoutConsent = Literal["drop", "strip_identifiers"]
WITHOUT_CONSENT: tuple[WithoutConsent, ...] = ("drop", "strip_identifiers")
ROTATIONS: tuple[Rotation, ...] = ("never", "daily", "monthly")
PiiAction = Literal["replace", "reject"]
PII_ACTIONS: tuple[PiiAction, ...] = ("replace", "reject")
# Input fields whose personal data the detectors catch (anonymizer.detectors): `pii.fields` may
# set the action of each. A free-text column added later is detected under `pii.action` anyway.
PII_FIELDS = (
    "service", "path", "user_agent", "manufacturer", "model", "os", "os_version", "app_version",
    "screen", "locale", "event", "feature", "action", "url", "properties", "operation_code",
    "mail_class", "delivery_status",
)  # fmt: skip
MAX_PII_DIGITS = 64
DEFAULT_MIN_K = 5  # k-anonymity of reports (DESIGN: default 5)
# requests for these (the path's file extension, lower case) are static assets, not pageviews
DEFAULT_ASSET_EXTENSIONS = (
    "avif", "bmp", "css", "eot", "gif", "gz", "ico", "jpeg", "jpg", "js", "json", "map", "mjs",
    "mp3", "mp4", "otf", "png", "svg", "ttf", "txt", "webm", "webp", "woff", "woff2", "xml", "zip",
)  # fmt: skip
_EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")
# Fields that identify a person and may only be stored as keyed pseudonyms.
MAX_IPV4_PREFIX = 24
MAX_IPV6_PREFIX = 64
IDENTIFIER_FIELDS = ("user_id", "session_id", "device_id", "imb.serial")
DEFAULT_PLANS: Mapping[str, int] = MappingProxyType(
    {"free": 30, "standard": 395, "enterprise": 1095}
)


@dataclass(frozen=True, slots=True)
class IpPolicy:
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48


@dataclass(frozen=True, slots=True)
class GeoPolicy:
    granularity: Granularity = "city"


@dataclass(frozen=True, slots=True)
class IdentifiersPolicy:
    """Identifier fields listed here are pseudonymized; identifier fields not listed are dropped."""

    fields: frozenset[str] = frozenset(IDENTIFIER_FIELDS)
    rotation: Rotation = "monthly"
    visitor_id: VisitorId = "none"

    def epoch(self, now: datetime) -> str:
        """The key epoch in force at `now` (UTC): `0`, `2026-11` or `2026-11-25`."""
        if self.rotation == "never":
            return "0"
        if self.rotation == "monthly":
            return f"{now.year:04d}-{now.month:02d}"
        return f"{now.year:04d}-{now.month:02d}-{now.day:02d}"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    days: int = 395
    plans: Mapping[str, int] = field(default_factory=lambda: DEFAULT_PLANS)

    def days_for(self, plan: str) -> int:
        """Retention for a tenant's plan; `days` when the tenant has no plan."""
        return self.plans.get(plan, self.days) if plan else self.days


@dataclass(frozen=True, slots=True)
class MailPolicy:
    """How much of an IMb routing code (ZIP+4+delivery point: a household) is kept."""

    routing_zip: RoutingZip = "zip5"


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    """What happens to an analytics record the person did not consent to (or opted out of)."""

    analytics_without_consent: WithoutConsent = "strip_identifiers"
    honour_gpc: bool = True
    honour_dnt: bool = True


@dataclass(frozen=True, slots=True)
class PiiPolicy:
    """What a detection of personal data in a kept field does: replace it by its placeholder
    (`{email}`, ...) or reject the record; per field, defaulting to `action`."""

    action: PiiAction = "replace"
    digits: int = DEFAULT_DIGITS  # a run of this many digits is an id; 0: not detected
    fields: Mapping[str, PiiAction] = field(default_factory=lambda: MappingProxyType({}))
    detectors: Detectors = ALL

    def action_for(self, name: str) -> PiiAction:
        return self.fields.get(name, self.action)


@dataclass(frozen=True, slots=True)
class ReportsPolicy:
    """How small a group the reports may show: a group with fewer than `min_k` distinct subjects
    is merged into "(other)" or suppressed, and no caller may ask for a smaller k."""

    min_k: int = DEFAULT_MIN_K
    # pageviews leave out non-bot requests whose path ends in one of these extensions
    asset_extensions: tuple[str, ...] = DEFAULT_ASSET_EXTENSIONS


@dataclass(frozen=True, slots=True)
class Policy:
    version: int
    ip: IpPolicy
    geo: GeoPolicy
    identifiers: IdentifiersPolicy
    url: UrlScrubber
    retention: RetentionPolicy
    mail: MailPolicy = MailPolicy()
    consent: ConsentPolicy = ConsentPolicy()
    unknown_fields: UnknownFields = DEFAULT_UNKNOWN_FIELDS
    pii: PiiPolicy = PiiPolicy()
    reports: ReportsPolicy = ReportsPolicy()


def default_policy() -> Policy:
    """The policy in force when no file is configured: the documented defaults."""
    return parse_policy("version = 1\n")


def load_toml(text: str) -> dict[str, Any]:
    """TOML text -> dict; a syntax error is a `PolicyError` with its line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise PolicyError("<file>", f"not valid TOML: {e}", int(m.group(1)) if m else None) from e


def merge_docs(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with every key that `override` names replaced; tables merge key by key, so a
    tenant file overrides only what it names."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_docs(out[key], value)
        else:
            out[key] = value
    return out


DEFAULT_KEEP_QUERY_PARAMS = ("utm_source", "utm_medium", "utm_campaign")
DEFAULT_REDACT = ("email", "token", "uuid", "digits>=6")


def parse_policy(text: str, base: str | None = None) -> Policy:
    """Parse and validate a policy; raises `PolicyError` naming the key and line.

    With `base`, `text` is a tenant override: it names only what differs from the base policy,
    and error lines point into the override when the key is there, else into the base.
    Defaults are the dataclasses' own.
    """
    doc = load_toml(text)
    texts = [text]
    if base is not None:
        doc = merge_docs(load_toml(base), doc)
        texts.append(base)

    def error(dotted: str, reason: str) -> PolicyError:
        return PolicyError(dotted, reason, line_of(texts, dotted))

    r = TomlTable(doc, "", error)
    _check_unknown(r)
    version = r.integer("version", None, 1, 2**31 - 1)
    t, d = r.table("ip"), IpPolicy()
    ip = IpPolicy(
        # capped: a /32 (or a /128) is the full address, which the product never stores
        ipv4_prefix=t.integer("ipv4_prefix", d.ipv4_prefix, 0, MAX_IPV4_PREFIX),
        ipv6_prefix=t.integer("ipv6_prefix", d.ipv6_prefix, 0, MAX_IPV6_PREFIX),
    )
    geo = GeoPolicy(r.table("geo").choice("granularity", GeoPolicy().granularity, GRANULARITIES))
    t, i = r.table("identifiers"), IdentifiersPolicy()
    fields = t.str_list("fields", sorted(i.fields))  # default: all of them
    for n, f in enumerate(fields):
        if f not in IDENTIFIER_FIELDS:
            raise t.fail(
                "fields",
                f"[{n}] {f!r} is not an identifier field; known: " + ", ".join(IDENTIFIER_FIELDS),
            )
    identifiers = IdentifiersPolicy(
        fields=frozenset(fields),
        rotation=t.choice("rotation", i.rotation, ROTATIONS),
        visitor_id=t.choice("visitor_id", i.visitor_id, VISITOR_IDS),
    )
    t = r.table("url")
    keep = t.str_list("keep_query_params", DEFAULT_KEEP_QUERY_PARAMS)
    redact = t.str_list("redact", DEFAULT_REDACT)
    try:
        url = UrlScrubber.build(keep, redact)
    except PolicyError as e:
        raise PolicyError(e.key, e.reason, line_of(texts, "url.redact")) from e
    t, rd = r.table("retention"), RetentionPolicy()
    days = t.integer("days", rd.days, 1, 36500)
    plans_table = t.at(t.dotted("plans"), t.mapping("plans", rd.plans))
    plans: dict[str, int] = {}
    for name, value in plans_table.values.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 36500:
            raise plans_table.fail(name, "must be a whole number of days from 1 to 36500")
        plans[name] = value
    retention = RetentionPolicy(days=days, plans=MappingProxyType(plans))
    mail = MailPolicy(r.table("mail").choice("routing_zip", MailPolicy().routing_zip, ROUTING_ZIPS))
    t, c = r.table("consent"), ConsentPolicy()
    consent = ConsentPolicy(
        analytics_without_consent=t.choice(
            "analytics_without_consent", c.analytics_without_consent, WITHOUT_CONSENT
        ),
        honour_gpc=t.boolean("honour_gpc", c.honour_gpc),
        honour_dnt=t.boolean("honour_dnt", c.honour_dnt),
    )
    unknown = r.table("records").choice("unknown_fields", DEFAULT_UNKNOWN_FIELDS, UNKNOWN_FIELDS)
    # k >= 2: a "group" of one subject is that subject; the report's k parameter is a UInt32
    rt, rp = r.table("reports"), ReportsPolicy()
    extensions = rt.str_list("asset_extensions", rp.asset_extensions)
    if not all(_EXTENSION.match(e) for e in extensions):
        raise rt.fail("asset_extensions", "each must be 1 to 8 lower-case letters or digits")
    reports = ReportsPolicy(
        rt.integer("min_k", rp.min_k, 2, 2**32 - 1), tuple(sorted(set(extensions)))
    )
    return Policy(
        version, ip, geo, identifiers, url, retention, mail, consent, unknown, _pii(r), reports
    )


def _pii(r: TomlTable) -> PiiPolicy:
    t, d = r.table("pii"), PiiPolicy()
    action = t.choice("action", d.action, PII_ACTIONS)
    digits = t.integer("digits", d.digits, 0, MAX_PII_DIGITS)
    if 0 < digits < 4:
        raise t.fail("digits", "must be 0 (off) or from 4: shorter runs are ordinary")
    per_field = t.table("fields")
    fields: dict[str, PiiAction] = {}
    for name in per_field.values:
        if name not in PII_FIELDS:
            raise per_field.fail(name, "unknown field; known: " + ", ".join(PII_FIELDS))
        fields[name] = per_field.choice(name, d.action, PII_ACTIONS)
    detectors = Detectors.build(None, digits or None)
    return PiiPolicy(action, digits, MappingProxyType(dict(sorted(fields.items()))), detectors)


def _check_unknown(r: TomlTable) -> None:
    for section, known in _SECTIONS.items():
        (r.table(section) if section else r).check_known(known)


_SECTIONS: Mapping[str, frozenset[str]] = {
    "": frozenset(
        {
            "version",
            "ip",
            "geo",
            "identifiers",
            "url",
            "retention",
            "mail",
            "consent",
            "records",
            "pii",
            "reports",
        }
    ),
    "ip": frozenset({"ipv4_prefix", "ipv6_prefix"}),
    "geo": frozenset({"granularity"}),
    "identifiers": frozenset({"fields", "rotation", "visitor_id"}),
    "url": frozenset({"keep_query_params", "redact"}),
    "retention": frozenset({"days", "plans"}),
    "mail": frozenset({"routing_zip"}),
    "consent": frozenset({"analytics_without_consent", "honour_gpc", "honour_dnt"}),
    "records": frozenset({"unknown_fields"}),
    "pii": frozenset({"action", "digits", "fields"}),
    "reports": frozenset({"min_k", "asset_extensions"}),
}


def policy_settings(policy: Policy) -> dict[str, Any]:
    """Every setting in force, flattened to `section.key` (defaults included): what the policy
    API shows and what a diff compares."""
    return {
        "version": policy.version,
        "ip.ipv4_prefix": policy.ip.ipv4_prefix,
        "ip.ipv6_prefix": policy.ip.ipv6_prefix,
        "geo.granularity": policy.geo.granularity,
        "identifiers.fields": sorted(policy.identifiers.fields),
        "identifiers.rotation": policy.identifiers.rotation,
        "identifiers.visitor_id": policy.identifiers.visitor_id,
        "url.keep_query_params": sorted(policy.url.keep_query_params),
        "url.redact": list(policy.url.rules),
        "mail.routing_zip": policy.mail.routing_zip,
        "consent.analytics_without_consent": policy.consent.analytics_without_consent,
        "consent.honour_gpc": policy.consent.honour_gpc,
        "consent.honour_dnt": policy.consent.honour_dnt,
        "records.unknown_fields": policy.unknown_fields,
        "pii.action": policy.pii.action,
        "pii.digits": policy.pii.digits,
        "pii.fields": dict(policy.pii.fields),
        "retention.days": policy.retention.days,
        "retention.plans": dict(sorted(policy.retention.plans.items())),
        "reports.min_k": policy.reports.min_k,
        "reports.asset_extensions": list(policy.reports.asset_extensions),
    }


def diff_settings(old: Policy, new: Policy) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every setting that differs."""
    a, b = policy_settings(old), policy_settings(new)
    return [(k, a[k], b[k]) for k in a if a[k] != b[k]]
