"""Settings that act on whole records and rows rather than on one field: the policy version
stamp, unknown fields, retention and the reports' k. Each owns its keys like an operator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from anonymizer.operators.operator import Operator
from anonymizer.policy import Policy


class PolicyVersion(Operator):
    """Stamps `policy_version` on every row."""

    name: ClassVar[str] = "policy_version"
    policy_keys: ClassVar[tuple[str, ...]] = ("version",)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        return f"new rows are stamped policy_version = {new.version}"


class UnknownFields(Operator):
    """Rejects a record with a field no rule names, or stores it without that field."""

    name: ClassVar[str] = "unknown_fields"
    policy_keys: ClassVar[tuple[str, ...]] = ("records.unknown_fields",)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if new.unknown_fields == "drop":
            return "a record with an unknown field is now stored without that field"
        return "a record with an unknown field is now rejected"


def _plans(old: Mapping[str, int], new: Mapping[str, int]) -> str:
    parts = []
    for plan in dict.fromkeys([*old, *new]):
        if plan not in new:
            parts.append(f"plan {plan} removed (its tenants fall back to retention.days)")
        elif plan not in old:
            parts.append(f"plan {plan} added: {new[plan]} days")
        elif old[plan] != new[plan]:
            parts.append(f"plan {plan}: {old[plan]} -> {new[plan]} days")
    return "; ".join(parts)


class Retention(Operator):
    """Stamps `retention_days` (from the tenant's plan) on every row; drives the TTL."""

    name: ClassVar[str] = "retention"
    policy_keys: ClassVar[tuple[str, ...]] = ("retention.days", "retention.plans")

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if key == "retention.days":
            a, b = old.retention.days, new.retention.days
            return f"rows of tenants without a plan are kept {b} days instead of {a}"
        return _plans(old.retention.plans, new.retention.plans)


class ReportsMinK(Operator):
    """The reports' k-anonymity: groups of fewer subjects are merged or suppressed."""

    name: ClassVar[str] = "reports_min_k"
    policy_keys: ClassVar[tuple[str, ...]] = ("reports.min_k",)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        a, b = old.reports.min_k, new.reports.min_k
        change = "smaller" if b < a else "larger"
        return f"reports now show groups of at least {b} subjects instead of {a} ({change} groups)"


class ReportsAssetExtensions(Operator):
    """Which requests the reports count as static assets rather than pageviews."""

    name: ClassVar[str] = "reports_asset_extensions"
    policy_keys: ClassVar[tuple[str, ...]] = ("reports.asset_extensions",)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        a, b = old.reports.asset_extensions, new.reports.asset_extensions
        added, removed = sorted(set(b) - set(a)), sorted(set(a) - set(b))
        parts = [f"{', '.join(added)} now static assets"] if added else []
        parts += [f"{', '.join(removed)} now pageviews"] if removed else []
        return "reports: " + ("; ".join(parts) or "the same extensions")
