"""The one list of operators, explicit (no import magic), and the owner of each policy key.

Adding an operator: one module beside this one (an `Operator`: `bind` applies it, `describe`
says what it does under a policy, `outcome` what it did to a record, `effect` what a change of a
key it owns means), one entry below, and its name as `op` on the rules it does
(`anonymizer.rules`); the row builders, `explain`, `diff` and the privacy doc pick it up from
there. Adding a policy key: its field in `anonymizer.policy` and one entry in its owner's
`policy_keys` (a test checks every key of `policy_settings` has exactly one owner).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from anonymizer.operators.consent import Consent
from anonymizer.operators.facility_zip import FacilityZip
from anonymizer.operators.geo import Geo
from anonymizer.operators.host import Host
from anonymizer.operators.ip_family import IpFamily
from anonymizer.operators.ip_prefix import IpPrefix
from anonymizer.operators.keep import Keep
from anonymizer.operators.operator import Applied, Operator
from anonymizer.operators.pii import Pii
from anonymizer.operators.properties import Properties
from anonymizer.operators.pseudonym import Pseudonym
from anonymizer.operators.query import Query
from anonymizer.operators.records import (
    PolicyVersion,
    ReportsAssetExtensions,
    ReportsMinK,
    Retention,
    UnknownFields,
)
from anonymizer.operators.referrer import Referrer
from anonymizer.operators.route import Route
from anonymizer.operators.routing_zip import RoutingZip
from anonymizer.operators.timestamp import Time
from anonymizer.operators.url_path import UrlPath
from anonymizer.operators.user_agent import UserAgent
from anonymizer.operators.visitor_id import VisitorId
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule

REGISTERED: tuple[Operator, ...] = (
    # field operators
    Time(),
    Keep(),
    IpPrefix(),
    IpFamily(),
    Geo(),
    Pseudonym(),
    VisitorId(),
    Host(),
    UrlPath(),
    Route(),
    Query(),
    Referrer(),
    UserAgent(),
    Pii(),
    Properties(),
    Consent(),
    RoutingZip(),
    FacilityZip(),
    # settings that act on whole records and rows
    PolicyVersion(),
    UnknownFields(),
    Retention(),
    ReportsMinK(),
    ReportsAssetExtensions(),
)


def _owners(operators: tuple[Operator, ...]) -> Mapping[str, Operator]:
    owners: dict[str, Operator] = {}
    for op in operators:
        for key in op.policy_keys:
            if key in owners:
                raise ValueError(f"{key} is owned by both {owners[key].name} and {op.name}")
            owners[key] = op
    return MappingProxyType(owners)


OWNERS: Mapping[str, Operator] = _owners(REGISTERED)
BY_NAME: Mapping[str, Operator] = MappingProxyType({op.name: op for op in REGISTERED})


def by_name(name: str) -> Operator:
    """The registered operator called `name`."""
    return BY_NAME[name]


def describe(rule: FieldRule, policy: Policy) -> Applied:
    """What `rule` does under `policy`, as its operator says (a rule with no operator stores
    nothing: what it declares)."""
    if not rule.op:
        return Applied(rule.operator, rule.how, rule.rule)
    return BY_NAME[rule.op].describe(rule, policy)


def effect(key: str, old: Policy, new: Policy) -> str:
    """What changing `key` alone from its value in `old` to that in `new` means."""
    return OWNERS[key].effect(key, old, new)
