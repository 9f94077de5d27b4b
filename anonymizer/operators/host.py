"""Normalize a host (lower-cased, no port or userinfo); an IP literal becomes {ip}."""

from __future__ import annotations

from typing import ClassVar

from anonymizer.operators.operator import Operator, Outcome, Sample
from anonymizer.rules import FieldRule


class Host(Operator):
    name: ClassVar[str] = "host"

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome:
        event = sample.kind == "event"
        stored = sample.row["url_host"] if event else sample.row["host"]
        if stored == "{ip}":
            return Outcome("redacted", "an IP literal")
        notes = ["lower-cased, port dropped"] if stored != sample.host else []
        if event and "@" in str(sample.raw["url"]).partition("://")[2].split("/")[0]:
            notes.append("userinfo dropped")
        return Outcome("kept", "; ".join(notes))
