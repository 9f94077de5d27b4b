"""The one interface every operator (and record-level setting) implements, presidio style.

An operator owns the policy keys it alone describes: it says what a change of one of them means
(`effect`, what `anonymizer diff` prints). A rule of `anonymizer.rules` names the operator that
does it (`FieldRule.op`); that operator says what it did to one record's field (`outcome`, what
`anonymizer explain` prints). Each lives in its own module and is listed once in
`anonymizer.operators.registry`; a new policy key is one entry in its owner's `policy_keys`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from anonymizer.kinds import Record
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.rules import Operator as OperatorName


@dataclass(frozen=True, slots=True)
class Sample:
    """One record as `explain` sees it: the raw JSON, the typed record, the row the real row
    builder made of it, and the host and request target of its URL (if any)."""

    policy: Policy
    kind: str
    raw: Mapping[str, Any]
    record: Record
    row: Mapping[str, Any]
    reason: str  # why the event's identifiers were stripped; empty: they were not
    host: str = ""
    target: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an operator did to one field (or part) of one record."""

    operator: OperatorName
    detail: str = ""
    rule: str = ""  # the deciding policy key when narrower than the rule's; empty: the rule's


class Operator:
    """One transformation of record fields, or one setting that acts on whole records."""

    name: ClassVar[str]
    policy_keys: ClassVar[tuple[str, ...]] = ()  # the keys whose `effect` this operator owns

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        """One sentence on what changing `key` (one of `policy_keys`) from its value in `old`
        to that in `new` means."""
        raise KeyError(f"{self.name} owns no policy key {key!r}")

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome | None:
        """What this operator did to `rule`'s field of `sample`; None: what the rule declares
        under the policy, with no detail."""
        return None


# --- wording shared by several effects ---------------------------------------------------------


def finer(old: int, new: int) -> str:
    return "finer: more identifying" if new > old else "coarser: less identifying"


def ordered(what: str, old: str, new: str, order: tuple[str, ...]) -> str:
    """A change along a scale from least to most identifying."""
    return f"{what} {new} instead of {old} ({finer(order.index(old), order.index(new))})"


def set_change(what: str, old: list[str], new: list[str], on: str, off: str) -> str:
    """Which entries of a list setting were added (`on`) and removed (`off`)."""
    added = [x for x in new if x not in old]
    removed = [x for x in old if x not in new]
    parts = [f"{what} {on}: " + ", ".join(added)] if added else []
    parts += [f"{what} {off}: " + ", ".join(removed)] if removed else []
    return "; ".join(parts) or "the same entries in another order: no effect"


def split_target(target: str) -> tuple[str, str]:
    """(path, query) of a request target; the fragment is not part of either."""
    path, _, query = target.partition("#")[0].partition("?")
    return path, query


def placeholders(before: str, after: str) -> str:
    """The distinct placeholders that replaced segments of `before` in `after`."""
    pairs = zip(before.split("/"), after.split("/"), strict=False)
    return ", ".join(dict.fromkeys(b for a, b in pairs if a != b))
