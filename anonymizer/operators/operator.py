"""The one interface every operator (and record-level setting) implements, presidio style.

An operator owns the policy keys it reads: it says what a change of one of them alone means
(`effect`, what `anonymizer diff` prints). Each lives in its own module and is listed once in
`anonymizer.operators.registry`; a new policy key is one entry in its owner's `policy_keys`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from anonymizer.policy import Policy


class Operator(ABC):
    """One transformation of record fields, or one setting that acts on whole records."""

    name: ClassVar[str]
    policy_keys: ClassVar[tuple[str, ...]]  # the keys this operator reads, and alone owns

    @abstractmethod
    def effect(self, key: str, old: Policy, new: Policy) -> str:
        """One sentence on what changing `key` (one of `policy_keys`) from its value in `old`
        to that in `new` means."""


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
