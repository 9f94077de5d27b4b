"""Scrub a URL: redact personal path segments (`url.redact`), keep only allow-listed query
parameters (`url.keep_query_params`)."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, set_change
from anonymizer.policy import Policy


class Url(Operator):
    name: ClassVar[str] = "url"
    policy_keys: ClassVar[tuple[str, ...]] = ("url.keep_query_params", "url.redact")

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        if key == "url.keep_query_params":
            a, b = sorted(old.url.keep_query_params), sorted(new.url.keep_query_params)
            return set_change("query parameters", a, b, "now kept", "now dropped")
        rules_a, rules_b = list(old.url.rules), list(new.url.rules)
        return set_change("redaction rules", rules_a, rules_b, "added", "removed")
