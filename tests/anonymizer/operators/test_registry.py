"""The operator registry as a spec: every policy key has exactly one owner, and what `diff`
prints for a change of each key alone is pinned by a golden file (made before the effects moved
out of `explain.py`, so the move changed no output)."""

from pathlib import Path

import pytest

from anonymizer.explain import explain_diff, policy_text, render_diff
from anonymizer.operators.ip_prefix import IpPrefix
from anonymizer.operators.registry import (
    BY_NAME,
    OWNERS,
    REGISTERED,
    _owners,
    by_name,
    describe,
    effect,
)
from anonymizer.policy import Policy, default_policy, diff_settings, parse_policy, policy_settings
from anonymizer.rules import PII_KEYS, RULES, setting_values

REPO = Path(__file__).resolve().parents[3]
DIFF_GOLDEN = REPO / "testdata" / "explain" / "diff_by_key.golden.txt"

# One other value per policy key (TOML), so each key's effect is shown both ways.
CHANGED: dict[str, str] = {
    "version": "2",
    "ip.ipv4_prefix": "16",
    "ip.ipv6_prefix": "56",
    "geo.granularity": '"country"',
    "identifiers.fields": '["user_id"]',
    "identifiers.rotation": '"daily"',
    "identifiers.visitor_id": '"daily"',
    "identifiers.late_window_hours": "48",
    "identifiers.late_visitor_id": '"coarse"',
    "url.keep_query_params": '["q", "utm_source"]',
    "url.redact": '["email"]',
    "mail.routing_zip": '"zip3"',
    "consent.analytics_without_consent": '"drop"',
    "consent.honour_gpc": "false",
    "consent.honour_dnt": "false",
    "records.unknown_fields": '"drop"',
    "pii.action": '"reject"',
    "pii.digits": "0",
    "pii.fields": '{ path = "reject" }',
    "retention.days": "30",
    "retention.plans": "{ free = 7, pro = 90 }",
    "reports.min_k": "10",
    "reports.asset_extensions": '["css", "pdf"]',
}


def changed(key: str) -> Policy:
    """The default policy with only `key` set to its value in `CHANGED`."""
    return parse_policy(policy_text({**setting_values(default_policy()), key: CHANGED[key]}))


def diff_by_key() -> str:
    """`diff` of the default policy against a change of each key alone, and back."""
    base, out = default_policy(), []
    for key in policy_settings(base):
        new = changed(key)
        out += [
            f"## {key}",
            render_diff(explain_diff(base, new)),
            render_diff(explain_diff(new, base)),
        ]
    return "\n".join(out)


def test_every_key_has_a_changed_value() -> None:
    assert list(CHANGED) == list(policy_settings(default_policy()))
    for key in CHANGED:
        assert [k for k, _, _ in diff_settings(default_policy(), changed(key))] == [key]


def test_diff_of_each_key_is_unchanged() -> None:
    assert diff_by_key() == DIFF_GOLDEN.read_text(), (
        f"{DIFF_GOLDEN.name} is out of date; if the change is intended, regenerate it with\n"
        "  .venv/bin/python -c 'import tests.anonymizer.operators.test_registry as t; "
        'print(t.diff_by_key(), end="")\' > testdata/explain/diff_by_key.golden.txt'
    )


# --- the registry ------------------------------------------------------------------------------


def test_every_policy_key_has_exactly_one_owner() -> None:
    keys = [k for op in REGISTERED for k in op.policy_keys]
    assert sorted(keys) == sorted(policy_settings(default_policy()))
    assert len(keys) == len(set(keys))
    assert set(OWNERS) == set(policy_settings(default_policy()))


def test_names_are_unique_and_found() -> None:
    names = [op.name for op in REGISTERED]
    assert len(names) == len(set(names))
    assert all(by_name(n).name == n for n in names)


def test_a_key_owned_twice_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"ip\.ipv4_prefix is owned by both ip_prefix and ip_prefix"
    ):
        _owners((IpPrefix(), IpPrefix()))


@pytest.mark.parametrize("key", list(CHANGED))
def test_effect_is_the_owners(key: str) -> None:
    new = changed(key)
    assert effect(key, default_policy(), new) == OWNERS[key].effect(key, default_policy(), new)
    assert effect(key, default_policy(), new)


def test_every_rule_names_a_registered_operator() -> None:
    named = {r.op for r in RULES if r.op}
    assert named <= set(BY_NAME), named - set(BY_NAME)


def test_no_operator_is_dead() -> None:
    """Each registered operator does some rule, or owns a policy key, or both."""
    named = {r.op for r in RULES if r.op}
    for op in REGISTERED:
        assert op.name in named or op.policy_keys, op.name


def test_identifier_rules_are_pseudonyms_and_free_text_is_detected() -> None:
    for r in RULES:
        assert (r.op == "pseudonym") == bool(r.identifier), r.label
        if r.policy_keys == PII_KEYS and r.operator == "redacted" and r.field != "properties":
            assert r.op == "pii", r.label


def test_an_operator_without_keys_has_no_effect() -> None:
    with pytest.raises(KeyError, match="route owns no policy key"):
        by_name("route").effect("url.redact", default_policy(), default_policy())


def test_a_rule_without_operator_is_described_as_declared() -> None:
    (fragment,) = [r for r in RULES if r.kind == "access_log" and r.part == "fragment"]
    a = describe(fragment, default_policy())
    assert (a.operator, a.how, a.rule) == ("dropped", "the `#fragment` is dropped", "fixed rule")


def test_describe_is_the_operators() -> None:
    for r in RULES:
        if r.op:
            assert describe(r, default_policy()) == by_name(r.op).describe(r, default_policy())


def test_every_rule_that_stores_is_applied_by_its_operator() -> None:
    """An operator either binds a step, stores attributes as they are, or gates the record
    (under a policy that switches nothing off)."""
    p = parse_policy('version = 1\n[identifiers]\nvisitor_id = "daily"\n')
    for r in RULES:
        if r.columns:
            op = by_name(r.op)
            assert op.bind(r, p) or op.stores(r, p) or op.gate(r, p), r.label
