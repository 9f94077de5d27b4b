"""What the operator tests share: a rule by label, one operator bound and applied to one record,
a policy with one key changed, and the sample `explain` hands an operator."""

from collections.abc import Mapping
from typing import Any

from anonymizer.explain import _Explainer
from anonymizer.kinds import KindName
from anonymizer.operators.operator import Sample, copier
from anonymizer.operators.registry import by_name
from anonymizer.policy import Policy, default_policy, parse_policy
from anonymizer.pseudonym import PseudonymKey
from anonymizer.rules import FieldRule, rules_for
from anonymizer.types import Enrichment, TenantContext

KEY = PseudonymKey("2026-11", b"k" * 32)
DAY = 20_400  # a UTC day number; its salt below
SALT = b"s" * 32
CTX = TenantContext("acme", "free", KEY, {DAY: SALT})
DEFAULT = default_policy()


def rule(kind: KindName, label: str) -> FieldRule:
    """The rule of `kind` whose label is `label` (`ip`, `ip (geo)`, ...)."""
    (found,) = [r for r in rules_for(kind) if r.label == label]
    return found


def apply(
    r: FieldRule,
    record: Any,
    policy: Policy = DEFAULT,
    enrichment: Enrichment = Enrichment(),  # noqa: B008 (immutable)
    ctx: TenantContext = CTX,
    row: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of `r` after its operator, bound under `policy`, ran on `record` (the columns
    start empty, as in a real row; `row` supplies columns other steps wrote first)."""
    op = by_name(r.op)
    out: dict[str, Any] = {**dict.fromkeys(r.columns, ""), **(row or {})}
    stored = op.stores(r, policy)
    if stored:
        copier(stored)(record, out)
    step = op.bind(r, policy)
    if step is not None:
        step(record, enrichment, ctx, out)
    return {c: out[c] for c in r.columns}


def policy(text: str) -> Policy:
    return parse_policy("version = 1\n" + text)


def sample(kind: KindName, raw: Mapping[str, Any], p: Policy = DEFAULT) -> Sample:
    """What `explain` hands the operators for `raw`: the real row builder's row under `p`."""
    s = _Explainer(p, kind, raw).sample
    assert s is not None
    return s
