"""Store a value as sent (`kept` rules: a status code, a byte count, a part of the IMb)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from anonymizer.operators.operator import Operator, path_of
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule


class Keep(Operator):
    """What the value parser checked (and normalized: an upper-cased method) is what is stored;
    a text column still goes through `pii`'s pass over the row."""

    name: ClassVar[str] = "keep"

    def stores(self, rule: FieldRule, policy: Policy) -> Mapping[str, str]:
        (column,) = rule.columns
        return {column: path_of(rule, column)}
