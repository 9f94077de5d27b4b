"""The record-level settings own their keys' effects like operators do."""

from anonymizer.operators.records import PolicyVersion, ReportsMinK, Retention, UnknownFields
from tests.anonymizer.operators.support import DEFAULT, policy


def test_effects() -> None:
    assert PolicyVersion().effect("version", DEFAULT, policy("")) == (
        "new rows are stamped policy_version = 1"
    )
    drop = policy('[records]\nunknown_fields = "drop"\n')
    assert UnknownFields().effect("records.unknown_fields", DEFAULT, drop) == (
        "a record with an unknown field is now stored without that field"
    )
    plans = policy("[retention]\nplans = { free = 7, pro = 90 }\n")
    assert Retention().effect("retention.plans", DEFAULT, plans) == (
        "plan free: 30 -> 7 days; plan standard removed (its tenants fall back to "
        "retention.days); plan enterprise removed (its tenants fall back to retention.days); "
        "plan pro added: 90 days"
    )
    assert ReportsMinK().effect("reports.min_k", DEFAULT, policy("[reports]\nmin_k = 10\n")) == (
        "reports now show groups of at least 10 subjects instead of 5 (larger groups)"
    )


def test_they_act_on_no_field() -> None:
    for setting in (PolicyVersion(), UnknownFields(), Retention(), ReportsMinK()):
        assert setting.finish(DEFAULT, "access_log") is None and setting.policy_keys
