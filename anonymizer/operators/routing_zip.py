"""Truncate an IMb routing code (ZIP+4+delivery point: a household) to `mail.routing_zip`."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, ordered
from anonymizer.policy import ROUTING_ZIPS, Policy


class RoutingZip(Operator):
    name: ClassVar[str] = "routing_zip"
    policy_keys: ClassVar[tuple[str, ...]] = ("mail.routing_zip",)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        z, y = old.mail.routing_zip, new.mail.routing_zip
        return ordered("the IMb routing code is kept as", z, y, ROUTING_ZIPS)
