"""The privacy team's policy file, parsed once into a frozen, pre-compiled `Policy`.

Validation is strict: an unknown section or key is an error (a misspelt rule must never silently
mean "no rule"), and every error names the key and, where it can be found, the line.

Each key is declared ONCE, on the dataclass field that holds it (`key(default, read, ...)`, see
`anonymizer.toml_reader`): its default, how it is read and checked, its TOML name when that
differs, and how `policy_settings` shows it. A section is a `Policy` field whose dataclass
declares its keys (`section(...)`). The parser, the known keys of every table and
`policy_settings` are all derived from those fields.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from anonymizer.detectors import ALL, DEFAULT_DIGITS, Detectors
from anonymizer.errors import PolicyError
from anonymizer.geo import GRANULARITIES, Granularity
from anonymizer.toml_reader import (
    Declared,
    TomlTable,
    boolean,
    choice,
    declared,
    integer,
    key,
    known_keys,
    line_of,
    read_declared,
    section,
    settings_of,
    sorted_list,
    sorted_map,
    strings,
)
from anonymizer.url import UrlScrubber

Rotation = Literal["never", "daily", "monthly"]
VisitorId = Literal["none", "daily"]
VISITOR_IDS: tuple[VisitorId, ...] = ("none", "daily")
LateVisitorId = Literal["none", "coarse"]
LATE_VISITOR_IDS: tuple[LateVisitorId, ...] = ("none", "coarse")
MAX_LATE_WINDOW_HOURS = 168  # a week: a day's salt kept longer would link far more than a day
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
DEFAULT_KEEP_QUERY_PARAMS = ("utm_source", "utm_medium", "utm_campaign")
DEFAULT_REDACT = ("email", "token", "uuid", "digits>=6")


# --- checks of single keys ---------------------------------------------------------------------


def _identifier_fields(t: TomlTable, name: str, default: frozenset[str]) -> frozenset[str]:
    listed = t.str_list(name, sorted(default))  # default: all of them
    for n, f in enumerate(listed):
        if f not in IDENTIFIER_FIELDS:
            raise t.fail(
                name,
                f"[{n}] {f!r} is not an identifier field; known: " + ", ".join(IDENTIFIER_FIELDS),
            )
    return frozenset(listed)


def _plans(t: TomlTable, name: str, default: Mapping[str, int]) -> Mapping[str, int]:
    table = t.at(t.dotted(name), t.mapping(name, default))
    plans: dict[str, int] = {}
    for plan, value in table.values.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 36500:
            raise table.fail(plan, "must be a whole number of days from 1 to 36500")
        plans[plan] = value
    return MappingProxyType(plans)


def _digits(t: TomlTable, name: str, default: int) -> int:
    digits = t.integer(name, default, 0, MAX_PII_DIGITS)
    if 0 < digits < 4:
        raise t.fail(name, "must be 0 (off) or from 4: shorter runs are ordinary")
    return digits


def _extensions(t: TomlTable, name: str, default: Iterable[str]) -> tuple[str, ...]:
    extensions = t.str_list(name, default)
    if not all(_EXTENSION.match(e) for e in extensions):
        raise t.fail(name, "each must be 1 to 8 lower-case letters or digits")
    return tuple(sorted(set(extensions)))


def _pii_fields(t: TomlTable, name: str, default: Mapping[str, str]) -> Mapping[str, PiiAction]:
    per_field = t.table(name)
    actions: dict[str, PiiAction] = {}
    for f in per_field.values:
        if f not in PII_FIELDS:
            raise per_field.fail(f, "unknown field; known: " + ", ".join(PII_FIELDS))
        actions[f] = per_field.choice(f, "replace", PII_ACTIONS)
    return MappingProxyType(dict(sorted(actions.items())))


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


# --- the sections ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IpPolicy:
    # capped: a /32 (or a /128) is the full address, which the product never stores
    ipv4_prefix: int = key(24, integer(0, MAX_IPV4_PREFIX))
    ipv6_prefix: int = key(48, integer(0, MAX_IPV6_PREFIX))


@dataclass(frozen=True, slots=True)
class GeoPolicy:
    granularity: Granularity = key("city", choice(GRANULARITIES))


@dataclass(frozen=True, slots=True)
class IdentifiersPolicy:
    """Identifier fields listed here are pseudonymized; identifier fields not listed are dropped."""

    fields: frozenset[str] = key(frozenset(IDENTIFIER_FIELDS), _identifier_fields, show=sorted_list)
    rotation: Rotation = key("monthly", choice(ROTATIONS))
    visitor_id: VisitorId = key("none", choice(VISITOR_IDS))
    # how long after its day ends a day's visitor salt is kept for late records (then destroyed)
    late_window_hours: int = key(1, integer(1, MAX_LATE_WINDOW_HOURS))
    # the subject of a record that comes after its day's salt is gone: none, or a coarse per-day
    # pseudonym of the columns already stored (anonymizer.pseudonym.coarse_visitor_id)
    late_visitor_id: LateVisitorId = key("none", choice(LATE_VISITOR_IDS))

    def epoch(self, now: datetime) -> str:
        """The key epoch in force at `now` (UTC): `0`, `2026-11` or `2026-11-25`."""
        if self.rotation == "never":
            return "0"
        if self.rotation == "monthly":
            return f"{now.year:04d}-{now.month:02d}"
        return f"{now.year:04d}-{now.month:02d}-{now.day:02d}"


@dataclass(frozen=True, slots=True)
class UrlKeys:
    """The `[url]` keys; the policy holds them compiled (`UrlScrubber`)."""

    keep_query_params: tuple[str, ...] = key(DEFAULT_KEEP_QUERY_PARAMS, strings, show=sorted_list)
    redact: tuple[str, ...] = key(DEFAULT_REDACT, strings, show=list, attr="rules")


def _url(values: dict[str, Any]) -> UrlScrubber:
    return UrlScrubber.build(list(values["keep_query_params"]), list(values["redact"]))


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    days: int = key(395, integer(1, 36500))
    plans: Mapping[str, int] = key(None, _plans, show=sorted_map, factory=lambda: DEFAULT_PLANS)

    def days_for(self, plan: str) -> int:
        """Retention for a tenant's plan; `days` when the tenant has no plan."""
        return self.plans.get(plan, self.days) if plan else self.days


@dataclass(frozen=True, slots=True)
class MailPolicy:
    """How much of an IMb routing code (ZIP+4+delivery point: a household) is kept."""

    routing_zip: RoutingZip = key("zip5", choice(ROUTING_ZIPS))


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    """What happens to an analytics record the person did not consent to (or opted out of)."""

    analytics_without_consent: WithoutConsent = key("strip_identifiers", choice(WITHOUT_CONSENT))
    honour_gpc: bool = key(True, boolean)
    honour_dnt: bool = key(True, boolean)


@dataclass(frozen=True, slots=True)
class PiiPolicy:
    """What a detection of personal data in a kept field does: replace it by its placeholder
    (`{email}`, ...) or reject the record; per field, defaulting to `action`."""

    action: PiiAction = key("replace", choice(PII_ACTIONS))
    # a run of this many digits is an id; 0: not detected
    digits: int = key(DEFAULT_DIGITS, _digits)
    fields: Mapping[str, PiiAction] = key(None, _pii_fields, show=dict, factory=_empty)
    detectors: Detectors = ALL  # compiled from `digits`

    def action_for(self, name: str) -> PiiAction:
        return self.fields.get(name, self.action)


def _pii(values: dict[str, Any]) -> PiiPolicy:
    return PiiPolicy(**values, detectors=Detectors.build(None, values["digits"] or None))


@dataclass(frozen=True, slots=True)
class ReportsPolicy:
    """How small a group the reports may show: a group with fewer than `min_k` distinct subjects
    is merged into "(other)" or suppressed, and no caller may ask for a smaller k."""

    # k >= 2: a "group" of one subject is that subject; the report's k parameter is a UInt32
    min_k: int = key(DEFAULT_MIN_K, integer(2, 2**32 - 1))
    # pageviews leave out non-bot requests whose path ends in one of these extensions
    asset_extensions: tuple[str, ...] = key(DEFAULT_ASSET_EXTENSIONS, _extensions, show=list)


@dataclass(frozen=True, slots=True)
class Policy:
    """The policy in force. Its fields, in order, are the keys and sections of the file as
    `policy_settings` lists them (and the audit log, `diff` and the privacy doc after it)."""

    version: int = key(None, integer(1, 2**31 - 1))
    ip: IpPolicy = section(IpPolicy)
    geo: GeoPolicy = section(GeoPolicy)
    identifiers: IdentifiersPolicy = section(IdentifiersPolicy)
    url: UrlScrubber = section(UrlKeys, _url)
    mail: MailPolicy = section(MailPolicy)
    consent: ConsentPolicy = section(ConsentPolicy)
    unknown_fields: UnknownFields = key(
        DEFAULT_UNKNOWN_FIELDS, choice(UNKNOWN_FIELDS), name="records.unknown_fields"
    )
    pii: PiiPolicy = section(PiiPolicy, _pii)
    retention: RetentionPolicy = section(RetentionPolicy)
    reports: ReportsPolicy = section(ReportsPolicy)


# --- derived from the declarations --------------------------------------------------------------

SETTINGS: tuple[Declared, ...] = declared(Policy)  # every key, in the order of `policy_settings`
KNOWN_KEYS: Mapping[str, frozenset[str]] = known_keys(SETTINGS)


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
    for name, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = merge_docs(out[name], value)
        else:
            out[name] = value
    return out


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
    for table, names in KNOWN_KEYS.items():
        (r.table(table) if table else r).check_known(names)
    try:
        return read_declared(Policy, r, SETTINGS)
    except PolicyError as e:  # a compiled section (the URL rules) refuses a value: name its line
        if e.line is not None:
            raise
        raise PolicyError(e.key, e.reason, line_of(texts, e.key.partition("[")[0])) from e


def policy_settings(policy: Policy) -> dict[str, Any]:
    """Every setting in force, flattened to `section.key` (defaults included): what the policy
    API shows and what a diff compares."""
    return settings_of(policy, SETTINGS)


def diff_settings(old: Policy, new: Policy) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every setting that differs."""
    a, b = policy_settings(old), policy_settings(new)
    return [(k, a[k], b[k]) for k in a if a[k] != b[k]]
