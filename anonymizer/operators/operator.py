"""The one interface every operator (and record-level setting) implements, presidio style.

A rule of `anonymizer.rules` names the operator that does it (`FieldRule.op`). Under a policy the
operator binds itself to the rule once (`bind`: the step that writes the rule's columns of a row,
with every policy decision already taken), and the kind's compiled plan (`anonymizer.anonymize`)
runs those steps for each record: the operators are what the row builders run. The same object
says what the rule does under a policy (`describe`, what the privacy doc prints), what it did to
one record's field (`outcome`, what `anonymizer explain` prints) and what a change of a policy
key it owns means (`effect`, what `anonymizer diff` prints). Each lives in its
own module and is listed once in `anonymizer.operators.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, ClassVar

from anonymizer.kinds import Record
from anonymizer.policy import Policy
from anonymizer.rules import FieldRule
from anonymizer.rules import Operator as OperatorName
from anonymizer.types import Enrichment, TenantContext
from anonymizer.url import split_url

Row = dict[str, Any]
# Writes the columns of one rule into the row of one record (the row starts with every column
# empty); raises `RecordInvalid` where the policy rejects the record.
Step = Callable[[Any, Enrichment, TenantContext, Row], None]
# Decides, before any step runs, whether a record is stored at all: (stored, why not or why its
# identifiers were stripped; "" when kept as is). May write its own columns.
Gate = Callable[[Any, Row], tuple[bool, str]]
# Runs over the finished row (the detectors over every free-text value).
Finish = Callable[[Row], Row]


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
class Applied:
    """What a rule does under one policy, and the setting that decided it."""

    operator: OperatorName
    how: str
    rule: str  # the deciding policy key, or the rule's keys, or "fixed rule"


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

    def describe(self, rule: FieldRule, policy: Policy) -> Applied:
        """What `rule` does under `policy`, before any record is seen (the privacy doc, the
        operator `explain` starts from, what `diff` compares): the rule's own operator and
        wording unless a setting of this operator switches it off or changes it."""
        return Applied(rule.operator, rule.how, rule.rule)

    def effect(self, key: str, old: Policy, new: Policy) -> str:
        """One sentence on what changing `key` (one of `policy_keys`) from its value in `old`
        to that in `new` means."""
        raise KeyError(f"{self.name} owns no policy key {key!r}")

    def outcome(self, rule: FieldRule, sample: Sample) -> Outcome | None:
        """What this operator did to `rule`'s field of `sample`; None: what the rule declares
        under the policy, with no detail."""
        return None

    def bind(self, rule: FieldRule, policy: Policy) -> Step | None:
        """The step that writes `rule`'s columns under `policy`, every setting read here once;
        None: the policy switches the rule off and its columns stay empty."""
        return None

    def stores(self, rule: FieldRule, policy: Policy) -> Mapping[str, str] | None:
        """For an operator that stores record attributes as they are: column -> attribute path
        (`imb.mailer_id`). The plan copies those of every rule in one step, before the others."""
        return None

    def gate(self, rule: FieldRule, policy: Policy) -> Gate | None:
        """For an operator that decides whether a whole record is stored: its gate under
        `policy`, run before every step."""
        return None

    def finish(self, policy: Policy, table: str) -> Finish | None:
        """For an operator that acts on the whole finished row of `table`: that pass."""
        return None


# --- what a step reads of a record --------------------------------------------------------------


def copier(attributes: Mapping[str, str]) -> Callable[[Any, Row], None]:
    """`copy(source, row)`: `row[column] = source.<attribute path>` for each pair, compiled once
    into straight assignments (a loop over getters, or `row.update(zip(...))`, costs 2-3 times as
    much per record, and this runs for every record)."""
    copy: Callable[[Any, Row], None] = _compile("source, row", attributes)
    return copy


def copy_step(attributes: Mapping[str, str]) -> Step:
    """`copier` as a step: the attributes are the record's."""
    step: Step = _compile("source, enrichment, ctx, row", attributes)
    return step


def _compile(args: str, attributes: Mapping[str, str]) -> Any:
    for path in attributes.values():
        if not all(part.isidentifier() for part in path.split(".")):
            raise ValueError(f"not an attribute path: {path!r}")
    body = "".join(f"    row[{c!r}] = source.{a}\n" for c, a in attributes.items()) or "    pass\n"
    space: dict[str, Any] = {}
    exec(f"def copy({args}):\n{body}", space)  # noqa: S102 (paths checked above)
    return space["copy"]


def field_of(rule: FieldRule, column: str = "") -> Callable[[Any], Any]:
    """The record's value for `rule`'s field; for a part of a composite field (the IMb) named by
    its column, that part (`record.imb.mailer_id`)."""
    return attrgetter(path_of(rule, column))


def path_of(rule: FieldRule, column: str = "") -> str:
    """The attribute path of `field_of`."""
    if column and column != rule.field and rule.part:
        return f"{rule.field}.{column}"
    return rule.field


def target_of(rule: FieldRule) -> Callable[[Any], str]:
    """The request target (path, query and fragment) of a URL-like field: an access log's `path`
    as sent, an event's `url` after its scheme and host."""
    get = attrgetter(rule.field)
    if rule.field == "url":
        return lambda record: split_url(get(record))[1]
    return get


def host_of(rule: FieldRule) -> Callable[[Any], str]:
    """The host of a host-carrying field: an access log's `host`, an event `url`'s authority."""
    get = attrgetter(rule.field)
    if rule.field == "url":
        return lambda record: split_url(get(record))[0]
    return get


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
