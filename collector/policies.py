"""The policies in force: the default file plus one override file per tenant
(`<tenant_dir>/<tenant>.toml`, naming only what differs).

Loading is all or nothing: every file is parsed and validated first, and only then are the new
policies swapped in, so a bad file (on SIGHUP or through `PUT /v1/policy`) is refused with its
key and line, and the policies in force stay. A change is prepared first (`prepare_reload`,
`check_override`), its audit rows are written by the caller, and only then is it put in force
(`commit`, `put_override`): a policy version is never stamped on a row before `policy_audit`
names it. `changing` serializes these steps, so no other change slips in between.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from anonymizer import Policy, PolicyError, parse_policy
from anonymizer.policy import diff_settings
from collector.errors import PolicyRefused

__all__ = ["PendingReload", "PolicyChange", "PolicyRefused", "PolicyStore"]

DEFAULT_TEXT = "version = 1\n"


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One tenant's effective policy changed: what the audit table records."""

    tenant_id: str
    old_version: int
    new_version: int
    diff: str  # one `key: old -> new` line per changed setting


@dataclass(frozen=True, slots=True)
class PendingReload:
    """A validated reload of every file, not yet in force: what `commit` puts in force."""

    default_text: str
    overrides: dict[str, str]
    default: Policy
    policies: dict[str, Policy]
    changes: list[PolicyChange]
    replaces: dict[str, Policy]  # the policies in force when it was prepared


def describe(old: Policy, new: Policy) -> str:
    return "\n".join(f"{key}: {a!r} -> {b!r}" for key, a, b in diff_settings(old, new))


class PolicyStore:
    def __init__(self, default_file: Path | None, tenant_dir: Path, tenant_ids: list[str]) -> None:
        self.default_file = default_file
        self.tenant_dir = tenant_dir
        self.tenant_ids = tenant_ids
        self.default_text = DEFAULT_TEXT
        self.overrides: dict[str, str] = {}
        self._policies: dict[str, Policy] = {}
        self._default = parse_policy(DEFAULT_TEXT)
        self.changing = asyncio.Lock()  # held from prepare to commit by every change
        self.reload()

    def for_tenant(self, tenant_id: str) -> Policy:
        return self._policies.get(tenant_id, self._default)

    def late_window_ms(self) -> int:
        """How long after its day a visitor salt must be kept: the longest late-data window of
        the policies in force (each tenant still uses a salt only within its own)."""
        policies = [self._default, *self._policies.values()]
        return max(p.identifiers.late_window_hours for p in policies) * 3_600_000

    def _read(self) -> tuple[str, dict[str, str]]:
        default_text = DEFAULT_TEXT
        if self.default_file is not None:
            try:
                default_text = self.default_file.read_text()
            except OSError as e:
                raise PolicyRefused(str(self.default_file), f"cannot read: {e.strerror}") from e
        overrides = {}
        for tenant in self.tenant_ids:
            path = self.tenant_dir / f"{tenant}.toml"
            if path.exists():
                overrides[tenant] = path.read_text()
        return default_text, overrides

    def _build(
        self, default_text: str, overrides: dict[str, str]
    ) -> tuple[Policy, dict[str, Policy]]:
        try:
            default = parse_policy(default_text)
        except PolicyError as e:
            raise PolicyRefused(str(self.default_file or "<default>"), e) from e
        policies = {}
        for tenant in self.tenant_ids:
            if tenant in overrides:
                try:
                    policies[tenant] = parse_policy(overrides[tenant], base=default_text)
                except PolicyError as e:
                    raise PolicyRefused(str(self.tenant_dir / f"{tenant}.toml"), e) from e
            else:
                policies[tenant] = default
        return default, policies

    def _changes(self, new: dict[str, Policy]) -> list[PolicyChange]:
        changes = []
        for tenant, policy in new.items():
            old = self._policies.get(tenant)
            if old is None or old != policy:
                changes.append(
                    PolicyChange(
                        tenant, old.version if old else 0, policy.version,
                        describe(old, policy) if old else "initial load",
                    )
                )  # fmt: skip
        return changes

    def _swap(
        self, default_text: str, overrides: dict[str, str], default: Policy, new: dict[str, Policy]
    ) -> None:
        self.default_text, self.overrides = default_text, overrides
        self._default, self._policies = default, new

    def prepare_reload(self) -> PendingReload:
        """Re-read and validate every file, changing nothing (raises `PolicyRefused`)."""
        default_text, overrides = self._read()
        default, policies = self._build(default_text, overrides)
        return PendingReload(
            default_text, overrides, default, policies, self._changes(policies), self._policies
        )

    def commit(self, pending: PendingReload) -> None:
        """Put a prepared reload in force, unless another change came first (`PolicyRefused`)."""
        if pending.replaces is not self._policies:
            raise PolicyRefused("policy files", "another change was put in force meanwhile")
        self._swap(pending.default_text, pending.overrides, pending.default, pending.policies)

    def reload(self) -> list[PolicyChange]:
        """Re-read every file and put it in force at once: only at start, before any row is
        stamped (the startup audit follows); later reloads go through `prepare_reload`."""
        pending = self.prepare_reload()
        self.commit(pending)
        return pending.changes

    def check_override(self, tenant_id: str, text: str) -> tuple[PolicyChange, Policy]:
        """What putting `text` in force for the tenant would change, or `PolicyRefused`.

        The new effective version must be higher than the one in force, so every version number
        in the audit trail names exactly one policy.
        """
        current = self.for_tenant(tenant_id)
        try:
            new = parse_policy(text, base=self.default_text)
        except PolicyError as e:
            raise PolicyRefused("request body", e) from e
        if new.version <= current.version:
            raise PolicyRefused(
                "request body",
                f"version must be higher than the version in force ({current.version})",
            )
        return PolicyChange(tenant_id, current.version, new.version, describe(current, new)), new

    def put_override(self, tenant_id: str, text: str) -> PolicyChange:
        """Validate a tenant's new override, write it (atomically) and put it in force."""
        change, new = self.check_override(tenant_id, text)
        self.tenant_dir.mkdir(parents=True, exist_ok=True)
        path = self.tenant_dir / f"{tenant_id}.toml"
        tmp = path.with_suffix(".toml.tmp")
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        overrides = {**self.overrides, tenant_id: text}
        policies = {**self._policies, tenant_id: new}
        self._swap(self.default_text, overrides, self._default, policies)
        return change
