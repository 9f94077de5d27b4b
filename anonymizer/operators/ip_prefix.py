"""Truncate an IP address to its network prefix (`ip.ipv4_prefix`, `ip.ipv6_prefix`)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample, finer
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule


class IpPrefix(Operator):
    name: ClassVar[str] = "ip_prefix"
    policy_keys: ClassVar[tuple[str, ...]] = ("ip.ipv4_prefix", "ip.ipv6_prefix")

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
