"""Truncate an IP address to its network prefix (`ip.ipv4_prefix`, `ip.ipv6_prefix`)."""

from __future__ import annotations

from typing import Any, ClassVar

from anonymizer.ip import truncate_ip
from anonymizer.operators.operator import Operator, Outcome, Row, Sample, Step, field_of, finer
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.types import Enrichment, TenantContext


class IpPrefix(Operator):
    name: ClassVar[str] = "ip_prefix"
    policy_keys: ClassVar[tuple[str, ...]] = ("ip.ipv4_prefix", "ip.ipv6_prefix")

    def bind(self, rule: FieldRule, policy: Policy) -> Step:
        v4, v6 = policy.ip.ipv4_prefix, policy.ip.ipv6_prefix
        address, (column,) = field_of(rule), rule.columns

        def step(record: Any, e: Enrichment, ctx: TenantContext, row: Row) -> None:
            ip = address(record)
            row[column] = truncate_ip(ip, v4, v6) if ip is not None else ""

        return step

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if key == "ip.ipv4_prefix":
            family, a, b = "IPv4", old.ip.ipv4_prefix, new.ip.ipv4_prefix
        else:
            family, a, b = "IPv6", old.ip.ipv6_prefix, new.ip.ipv6_prefix
        return f"{family} addresses are stored as /{b} networks instead of /{a} ({finer(a, b)})"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        bits = int(sample.row["ip_prefix"].rpartition("/")[2])  # the policy caps it below /32
        # only the prefix of this address's version applies
        return Outcome("truncated", f"cut to /{bits}", f"ip.ipv{sample.row['ip_version']}_prefix")
