"""`explain` as a spec: per field, the operator the policy applies, the rule, and the row.

Golden files hold the full text for one sample of each kind under the shipped policy. The
converter from raw JSON mirrors the collector's validators; tests here check the two agree.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from anonymizer.errors import PolicyError, RecordInvalid
from anonymizer.explain import (
    DEMO_KEY,
    explain,
    explain_diff,
    mask,
    policy_text,
    render_diff,
    render_text,
    to_json,
    to_record,
)
from anonymizer.policy import default_policy, parse_policy, policy_settings
from anonymizer.pseudonym import pseudonymize
from anonymizer.rules import (
    KINDS,
    OPERATORS,
    POLICY_KEYS,
    RECORD_KEYS,
    RULES,
    STAMPED,
    KindName,
    input_fields,
    rules_for,
    setting_values,
)
from anonymizer.validate import TimeWindow

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "testdata" / "explain"
POLICY = parse_policy((REPO / "policy.toml").read_text())
STRICT = parse_policy((REPO / "testdata" / "policies" / "valid_strict.toml").read_text())
KIND_OF_SAMPLE: dict[str, KindName] = {
    "access_log": "access_log",
    "device": "device",
    "event": "event",
    "mail_scan": "mail_scan",
}
# Raw values of each sample that must never appear in an explanation, in full.
RAW = {
    "access_log": ["203.0.113.77", "jane.doe-4711", "jane.doe@example.com", "sess-8f3a2c91",
                   "jane.doe%40example.com", "red+shoes", "1234567", "Firefox/120.0"],
    "device": ["2001:db8:1234:5678::1", "a1b2c3d4e5f6", "jane.doe-4711", "Android 14; Pixel 8"],
    "event": ["4711", "sess-8f3a2c91", "jane.doe@example.com", "jane:secret", "secret",
              "550e8400-e29b-41d4-a716-446655440000", "abc123", "1234567"],
    "mail_scan": ["0123456709498765432101234567891", "987654321", "01234567891", "567891"],
}  # fmt: skip


def sample(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / f"{kind}_record.json").read_text())
    return loaded


def field(kind: KindName, raw: dict[str, Any], label: str, policy: Any = POLICY) -> Any:
    """The explanation of one field (or part) of a record."""
    found = [f for f in explain(policy, kind, raw).fields if f.field == label]
    assert len(found) == 1, f"{label}: {[f.field for f in explain(policy, kind, raw).fields]}"
    return found[0]


# --- golden files --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KIND_OF_SAMPLE))
def test_golden(kind: str) -> None:
    golden = SAMPLES / f"{kind}_record.golden.txt"
    text = render_text(explain(POLICY, KIND_OF_SAMPLE[kind], sample(kind)))
    assert text == golden.read_text(), (
        f"{golden.name} is out of date; if the change is intended, regenerate it with\n"
        f"  .venv/bin/python -m anonymizer explain policy.toml testdata/explain/{kind}_record.json"
        f" --kind {kind} > testdata/explain/{kind}_record.golden.txt"
    )


@pytest.mark.parametrize("kind", list(KIND_OF_SAMPLE))
def test_no_raw_personal_value_in_any_output(kind: str) -> None:
    ex = explain(POLICY, KIND_OF_SAMPLE[kind], sample(kind))
    for out in (render_text(ex), json.dumps(to_json(ex)), (SAMPLES / f"{kind}_record.golden.txt").read_text()):  # fmt: skip
        for raw in RAW[kind]:
            assert raw not in out, raw


def test_every_field_of_every_sample_is_explained() -> None:
    for kind, kind_name in KIND_OF_SAMPLE.items():
        raw = sample(kind)
        explained = {f.field.split(" (")[0] for f in explain(POLICY, kind_name, raw).fields}
        assert explained == set(raw), kind


# --- known answers per operator --------------------------------------------------------------

ACCESS = {"ip": "203.0.113.77", "user_id": "jane", "path": "/pricing"}


@pytest.mark.parametrize(
    ("policy", "operator", "rule", "stored"),
    [
        (POLICY, "pseudonymized", "identifiers.fields", pseudonymize(DEMO_KEY, "user_id", "jane")),
        (parse_policy('version = 2\n[identifiers]\nfields = ["session_id"]\n'), "dropped",
         "identifiers.fields", ""),
    ],
)  # fmt: skip
def test_user_id(policy: Any, operator: str, rule: str, stored: str) -> None:
    f = field("access_log", ACCESS, "user_id", policy)
    assert (f.operator, f.rule, f.input, f.columns) == (operator, rule, "j***", ("user_pseudonym",))
    assert explain(policy, "access_log", ACCESS).row["user_pseudonym"] == stored  # type: ignore[index]


@pytest.mark.parametrize(
    ("policy_text", "ip", "operator", "rule", "detail", "prefix"),
    [
        ("", "203.0.113.77", "truncated", "ip.ipv4_prefix", "cut to /24", "203.0.113.0/24"),
        ("ipv4_prefix = 16", "203.0.113.77", "truncated", "ip.ipv4_prefix", "cut to /16", "203.0.0.0/16"),
        ("", "::ffff:203.0.113.77", "truncated", "ip.ipv4_prefix", "cut to /24", "203.0.113.0/24"),
        ("", "2001:db8:1:2::9", "truncated", "ip.ipv6_prefix", "cut to /48", "2001:db8:1::/48"),
    ],
)  # fmt: skip
def test_ip(policy_text: str, ip: str, operator: str, rule: str, detail: str, prefix: str) -> None:
    policy = parse_policy(f"version = 1\n[ip]\n{policy_text}\n")
    f = field("access_log", {"ip": ip}, "ip", policy)
    assert (f.operator, f.rule, f.detail) == (operator, rule, detail)
    assert explain(policy, "access_log", {"ip": ip}).row["ip_prefix"] == prefix  # type: ignore[index]


@pytest.mark.parametrize("setting", ["ipv4_prefix = 25", "ipv4_prefix = 32", "ipv6_prefix = 128"])
def test_a_prefix_that_keeps_the_address_is_refused(setting: str) -> None:
    with pytest.raises(PolicyError, match="must be a whole number from 0 to"):
        parse_policy(f"version = 1\n[ip]\n{setting}\n")


@pytest.mark.parametrize(
    ("granularity", "operator"),
    [
        ("city", "generalized"),
        ("region", "generalized"),
        ("country", "generalized"),
        ("none", "dropped"),
    ],
)
def test_geo(granularity: str, operator: str) -> None:
    policy = parse_policy(f'version = 1\n[geo]\ngranularity = "{granularity}"\n')
    f = field("access_log", ACCESS, "ip (geo)", policy)
    assert (f.operator, f.rule, f.columns) == (
        operator,
        "geo.granularity",
        ("geo_country", "geo_region", "geo_city"),
    )


@pytest.mark.parametrize(
    ("path", "operator", "detail", "stored"),
    [
        ("/pricing", "kept", "", "/pricing"),
        ("/users/jane@example.com/orders/1234567", "redacted", "segments replaced by {email}, {id}",
         "/users/{email}/orders/{id}"),
        ("/o/550e8400-e29b-41d4-a716-446655440000", "redacted", "segments replaced by {uuid}", "/o/{uuid}"),
        ("http://proxy.example.com/users/42", "kept", "", "/users/42"),
    ],
)  # fmt: skip
def test_path(path: str, operator: str, detail: str, stored: str) -> None:
    raw = {"ip": "203.0.113.77", "path": path}
    f = field("access_log", raw, "path")
    assert (f.operator, f.rule, f.detail, f.input) == (
        operator,
        "url.redact",
        detail,
        "/***" if path[0] == "/" else "h***",
    )
    assert explain(POLICY, "access_log", raw).row["path"] == stored  # type: ignore[index]


def test_path_kept_when_policy_redacts_nothing() -> None:
    policy = parse_policy("version = 1\n[url]\nredact = []\n")
    f = field(
        "access_log", {"ip": "203.0.113.77", "path": "/users/jane@example.com"}, "path", policy
    )
    assert (f.operator, f.rule) == ("kept", "url.redact")


@pytest.mark.parametrize(
    ("query", "operator", "detail", "stored"),
    [
        ("utm_source=news", "kept", "kept utm_source", "utm_source=news"),
        ("utm_source=news&q=shoes&token=x", "dropped", "dropped q, token; kept utm_source", "utm_source=news"),
        ("utm_source=a@b.example", "redacted", "kept utm_source; values replaced: utm_source", "utm_source={email}"),
        ("q=shoes", "dropped", "dropped q", ""),
    ],
)  # fmt: skip
def test_query(query: str, operator: str, detail: str, stored: str) -> None:
    raw = {"ip": "203.0.113.77", "path": "/s?" + query}
    f = field("access_log", raw, "path (query)")
    assert (f.operator, f.detail, f.columns) == (operator, detail, ("query",))
    assert explain(POLICY, "access_log", raw).row["query"] == stored  # type: ignore[index]


def test_query_and_fragment_lines_only_when_present() -> None:
    labels = [f.field for f in explain(POLICY, "access_log", ACCESS).fields]
    assert "path (query)" not in labels and "path (fragment)" not in labels
    f = field("access_log", {"ip": "203.0.113.77", "path": "/a#x"}, "path (fragment)")
    assert (f.operator, f.columns) == ("dropped", ())


def test_query_dropped_by_an_empty_allowlist() -> None:
    policy = parse_policy("version = 1\n[url]\nkeep_query_params = []\n")
    f = field(
        "access_log", {"ip": "203.0.113.77", "path": "/s?utm_source=x"}, "path (query)", policy
    )
    assert (f.operator, f.rule) == ("dropped", "url.keep_query_params")


@pytest.mark.parametrize(
    ("referrer", "operator", "stored"),
    [
        ("https://mail.example.org/inbox/jane@example.com", "truncated", "mail.example.org"),
        ("http://192.0.2.1/x", "redacted", "{ip}"),
        ("-", "dropped", ""),
    ],
)
def test_referrer(referrer: str, operator: str, stored: str) -> None:
    raw = {"ip": "203.0.113.77", "referrer": referrer}
    assert field("access_log", raw, "referrer").operator == operator
    assert explain(POLICY, "access_log", raw).row["referrer_host"] == stored  # type: ignore[index]


def test_host_that_is_an_ip_literal_is_redacted_and_masked() -> None:
    f = field("access_log", {"ip": "203.0.113.77", "host": "198.51.100.4:8080"}, "host")
    assert (f.operator, f.input) == ("redacted", "1***")
    assert (
        field("access_log", {"ip": "203.0.113.77", "host": "Example.com"}, "host").operator
        == "kept"
    )


def test_user_agent_is_generalized_and_not_parsed_here() -> None:
    raw = {"ip": "203.0.113.77", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}
    f = field("access_log", raw, "user_agent")
    assert (f.operator, f.input, f.detail) == (
        "generalized",
        "M***",
        "user-agent parsing not run here",
    )
    assert explain(POLICY, "access_log", raw).row["browser_family"] == "Other"  # type: ignore[index]


@pytest.mark.parametrize(
    ("visitor_id", "operator"), [("none", "dropped"), ("daily", "pseudonymized")]
)
def test_visitor_id(visitor_id: str, operator: str) -> None:
    policy = parse_policy(f'version = 1\n[identifiers]\nvisitor_id = "{visitor_id}"\n')
    raw = {"ip": "203.0.113.77", "user_agent": "curl/8", "time": "2026-11-25T10:00:00Z"}
    assert field("access_log", raw, "ip (visitor id)", policy).operator == operator
    assert field("access_log", raw, "user_agent (visitor id)", policy).operator == operator
    stored = explain(policy, "access_log", raw).row["visitor_id"]  # type: ignore[index]
    assert (len(stored) == 32) == (visitor_id == "daily")


def test_device_without_ip_gets_no_visitor_id() -> None:
    policy = parse_policy('version = 1\n[identifiers]\nvisitor_id = "daily"\n')
    f = field(
        "device", {"device_id": "d-1", "user_agent": "curl/8"}, "user_agent (visitor id)", policy
    )
    assert (f.operator, f.detail) == ("dropped", "no address: no visitor id")


@pytest.mark.parametrize(
    ("properties", "operator", "stored"),
    [
        ({"format": "csv", "n": 3}, "kept", {"format": "csv", "n": "3"}),
        ({"to": "jane@example.com", "tel": "+49 30 1234567", "ok": True}, "redacted",
         {"to": "{email}", "tel": "{phone}", "ok": "true"}),
    ],
)  # fmt: skip
def test_properties(properties: dict[str, Any], operator: str, stored: dict[str, str]) -> None:
    raw = {"event": "e", "properties": properties, "consent": ["analytics"]}
    f = field("event", raw, "properties")
    assert f.operator == operator and "jane" not in f.input
    assert explain(POLICY, "event", raw).row["properties"] == stored  # type: ignore[index]


@pytest.mark.parametrize(
    ("raw", "user_id_operator", "reason"),
    [
        ({"consent": ["analytics"]}, "pseudonymized", ""),
        ({}, "dropped", "no_consent"),
        ({"consent": ["analytics"], "gpc": "1"}, "dropped", "gpc"),
        ({"consent": ["analytics"], "dnt": True}, "dropped", "dnt"),
    ],
)
def test_event_consent(raw: dict[str, Any], user_id_operator: str, reason: str) -> None:
    record = {"event": "e", "user_id": "jane", **raw}
    f = field("event", record, "user_id")
    assert f.operator == user_id_operator
    if reason:
        assert (f.rule, f.detail) == (
            "consent.analytics_without_consent",
            f"identifiers stripped: {reason}",
        )
    row = explain(POLICY, "event", record).row
    assert row is not None and (row["consent_reason"], row["identifiers_stripped"]) == (
        reason,
        bool(reason),
    )


def test_event_dropped_without_consent_when_the_policy_says_drop() -> None:
    policy = parse_policy('version = 3\n[consent]\nanalytics_without_consent = "drop"\n')
    ex = explain(policy, "event", {"event": "e", "user_id": "jane", "feature": "f"})
    assert ex.row is None
    assert {f.operator for f in ex.fields} == {"dropped"}
    assert {f.rule for f in ex.fields} == {"consent.analytics_without_consent"}
    assert "row: none (the record is not stored)" in render_text(ex)


MAIL = {"imb": "0123456709498765432101234567891", "facility_zip": "20260"}


@pytest.mark.parametrize(
    ("routing_zip", "operator", "stored"),
    [("zip5", "truncated", "01234"), ("zip3", "truncated", "012"), ("none", "dropped", "")],
)
def test_routing_zip(routing_zip: str, operator: str, stored: str) -> None:
    policy = parse_policy(f'version = 1\n[mail]\nrouting_zip = "{routing_zip}"\n')
    f = field("mail_scan", MAIL, "imb (routing code)", policy)
    assert (f.operator, f.rule, f.input) == (operator, "mail.routing_zip", "0***")
    assert explain(policy, "mail_scan", MAIL).row["routing_zip"] == stored  # type: ignore[index]


def test_routing_code_of_five_digits_is_kept_and_absent_code_has_no_line() -> None:
    five = {"imb": "01234567094987654321" + "20500"}
    assert field("mail_scan", five, "imb (routing code)").operator == "kept"
    labels = [f.field for f in explain(POLICY, "mail_scan", {"imb": "01234567094987654321"}).fields]
    assert "imb (routing code)" not in labels


def test_imb_serial() -> None:
    assert field("mail_scan", MAIL, "imb (serial)").operator == "pseudonymized"
    assert field("mail_scan", MAIL, "imb (serial)", STRICT).operator == "dropped"
    row = explain(POLICY, "mail_scan", MAIL).row
    assert row is not None and row["serial_pseudonym"] == pseudonymize(
        DEMO_KEY, "imb.serial", "567094987654321"
    )
    assert (row["barcode_id"], row["service_type"], row["mailer_id"]) == ("01", "234", "567094")


@pytest.mark.parametrize(
    ("zip_", "operator"),
    [("20260", "kept"), ("20260-0001", "truncated"), ("202600001", "truncated")],
)
def test_facility_zip(zip_: str, operator: str) -> None:
    raw = {"imb": "01234567094987654321", "facility_zip": zip_}
    assert field("mail_scan", raw, "facility_zip").operator == operator
    assert explain(POLICY, "mail_scan", raw).row["facility_zip"] == "20260"  # type: ignore[index]


def test_unknown_field_is_dropped_and_masked() -> None:
    raw = {"ip": "203.0.113.77", "email": "jane@example.com"}
    ex = explain(POLICY, "access_log", raw)
    f = field("access_log", raw, "email")
    assert (f.operator, f.rule, f.input, f.columns) == (
        "dropped",
        "no rule: the collector rejects unknown fields",
        "j***",
        (),
    )
    assert any("would reject" in n for n in ex.notes)
    assert "jane@example.com" not in render_text(ex)
    drop = parse_policy('version = 1\n[records]\nunknown_fields = "drop"\n')
    assert (
        field("access_log", raw, "email", drop).rule
        == 'no rule: dropped (records.unknown_fields = "drop")'
    )


def test_notes_say_demo_key_and_no_enrichment() -> None:
    text = render_text(explain(POLICY, "access_log", ACCESS))
    assert "fixed demo key" in text and "Enrichment is not run" in text
    assert '"key_epoch": "explain"' in text


def test_missing_time_is_noted() -> None:
    ex = explain(POLICY, "access_log", ACCESS)
    assert ex.row is not None and ex.row["time"] == 0
    assert any("receive time" in n for n in ex.notes)


def test_every_operator_is_known() -> None:
    for kind in KIND_OF_SAMPLE:
        for f in explain(POLICY, KIND_OF_SAMPLE[kind], sample(kind)).fields:
            assert f.operator in OPERATORS


@pytest.mark.parametrize(
    ("kind", "raw", "field_name"),
    [
        ("access_log", {}, "ip"),
        ("access_log", {"ip": "not-an-ip"}, "ip"),
        ("access_log", {"ip": "203.0.113.77", "status": 700}, "status"),
        ("device", {"user_id": "u"}, "device_id"),
        ("event", {"event": "e", "consent": ["marketing"]}, "consent"),
        ("event", {"event": "e", "properties": {"a": {"b": 1}}}, "properties.a"),
        ("mail_scan", {"imb": "0123456709498765432101234567890"[:-2] + "9"}, "imb"),
    ],
)
def test_invalid_record_names_field_not_value(
    kind: KindName, raw: dict[str, Any], field_name: str
) -> None:
    with pytest.raises(RecordInvalid) as e:
        explain(POLICY, kind, raw)
    assert e.value.field == field_name
    for value in map(str, raw.values()):
        assert value not in str(e.value) or len(value) < 3


def test_mask() -> None:
    assert (mask("jane"), mask(4711), mask(""), mask("j"), mask(True)) == (
        "j***",
        "4***",
        "***",
        "***",
        "t***",
    )


# --- explain builds records with the very validators the collector runs (the registry's) --------

VALIDATORS = {name: kind.validate for name, kind in KINDS.items()}
WINDOW = TimeWindow.around(1_795_600_000_000, 36500)
TIME = {"time": "2026-11-25T10:00:00Z"}
AGREE = [
    ("access_log", {"ip": "[2001:db8::1]:443", "method": "m-search", "path": "https://h.example/a?b", "status": 204,
                    "bytes": 0, "duration_ms": 3, "user_id": 42, "session_id": "", "referrer": "-", "time": 1795600000}),
    ("access_log", {"ip": "1.2.3.4:80", "method": "GET", "status": 0, "time": 1795600000123}),
    ("device", {"device_id": 7, "ip": "::ffff:1.2.3.4", "locale": "de-DE", "screen": "1x1"}),
    ("event", {"event": "e", "consent": "essential, analytics", "gpc": 0, "dnt": "1", "url": "/a?b=c",
               "properties": {"a.b:c-d": 1.5, "x": None, "y": False}}),
    ("mail_scan", {"imb": "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA", "facility_zip": "20260-0001"}),
]  # fmt: skip
DISAGREE = [
    ("access_log", {"ip": 5}), ("access_log", {"ip": "1.2.3.4", "method": "G T"}),
    ("access_log", {"ip": "1.2.3.4", "duration_ms": -1}), ("access_log", {"ip": "1.2.3.4", "bytes": True}),
    ("access_log", {"ip": "1.2.3.4", "time": "2026-11-25T10:00:00"}), ("access_log", {"ip": "1.2.3.4", "time": True}),
    ("access_log", {"ip": "1.2.3.4", "user_id": "x" * 257}), ("access_log", {"ip": "1.2.3.4", "method": "GÉT"}),
    ("device", {"device_id": ""}), ("device", {"device_id": "d", "ip": "999.1.1.1"}),
    ("event", {}), ("event", {"event": "e", "gpc": "yes"}), ("event", {"event": "e", "properties": []}),
    ("event", {"event": "e", "properties": {"1bad": 1}}), ("event", {"event": "e", "properties": {"a\n": 1}}),
    ("event", {"event": "e", "properties": {"a": "x" * 513}}), ("event", {"event": "e", "consent": 3}),
    ("mail_scan", {"imb": "12"}), ("mail_scan", {"imb": "01234567094987654321", "facility_zip": "2026"}),
    ("mail_scan", {"imb": "01234567094987654321", "facility_zip": "\uff12\uff10\uff12\uff16\uff10"}),
]  # fmt: skip


@pytest.mark.parametrize("kind", list(KIND_OF_SAMPLE))
def test_input_fields_are_the_registrys(kind: KindName) -> None:
    assert set(input_fields(kind)) == KINDS[kind].fields


@pytest.mark.parametrize(
    ("kind", "raw"),
    [(k, sample(k)) for k in KIND_OF_SAMPLE]
    + [(k, {**TIME, **r}) if "time" not in r else (k, r) for k, r in AGREE],
)
def test_converter_builds_the_collectors_record(kind: KindName, raw: dict[str, Any]) -> None:
    assert to_record(kind, raw) == VALIDATORS[kind](raw, WINDOW)


@pytest.mark.parametrize(("kind", "raw"), DISAGREE)
def test_converter_rejects_what_the_collector_rejects(kind: KindName, raw: dict[str, Any]) -> None:
    with pytest.raises(RecordInvalid) as theirs:
        VALIDATORS[kind]({**TIME, **raw}, WINDOW)
    with pytest.raises(RecordInvalid) as ours:
        to_record(kind, {**TIME, **raw})
    assert (ours.value.field, ours.value.error) == (theirs.value.field, theirs.value.error)


# --- rules.py agrees with anonymize.py and the policy ------------------------------------------


@pytest.mark.parametrize("kind", list(KIND_OF_SAMPLE))
def test_rules_name_exactly_the_row_columns(kind: KindName) -> None:
    """Every column the row builder writes has a rule, and every rule's column is written."""
    row = explain(POLICY, kind, sample(kind)).row
    assert row is not None
    ruled = {c for r in rules_for(kind) for c in r.columns} | {s.column for s in STAMPED}
    assert set(row) == ruled


def test_every_policy_key_acts_on_something() -> None:
    governed = {k for r in (*RULES, *STAMPED) for k in r.policy_keys}
    assert set(POLICY_KEYS) == set(policy_settings(default_policy()))
    assert set(POLICY_KEYS) <= governed | set(RECORD_KEYS)


def test_every_rule_is_complete() -> None:
    for r in RULES:
        assert r.kind in KINDS and r.operator in OPERATORS and r.how and r.why.endswith(".")
        assert set(r.policy_keys) <= set(POLICY_KEYS), r.label


@pytest.mark.parametrize("text", [(REPO / "policy.toml").read_text(),
                                  (REPO / "testdata" / "policies" / "valid_strict.toml").read_text(),
                                  'version = 9\n[retention]\nplans = { "pro plan" = 3 }\n'])  # fmt: skip
def test_setting_values_round_trip(text: str) -> None:
    p = parse_policy(text)
    assert policy_settings(parse_policy(policy_text(setting_values(p)))) == policy_settings(p)


# --- diff --------------------------------------------------------------------------------------


def test_diff_of_equal_policies() -> None:
    assert explain_diff(POLICY, POLICY) == ()
    assert render_diff(()) == "no differences\n"


OLD = parse_policy(
    """version = 1
[ip]
ipv4_prefix = 24
ipv6_prefix = 48
[identifiers]
fields = ["user_id", "session_id", "device_id", "imb.serial"]
rotation = "monthly"
[retention]
days = 395
plans = { free = 30, standard = 395, enterprise = 1095 }
"""
)


def test_diff_names_each_setting_and_what_changes() -> None:
    changes = {c.key: c for c in explain_diff(OLD, STRICT)}
    assert list(changes) == [
        "version", "ip.ipv4_prefix", "ip.ipv6_prefix", "geo.granularity", "identifiers.fields",
        "identifiers.rotation", "url.keep_query_params", "url.redact", "retention.days", "retention.plans",
    ]  # fmt: skip
    assert (changes["ip.ipv4_prefix"].old, changes["ip.ipv4_prefix"].new) == ("24", "16")
    assert "coarser" in changes["ip.ipv4_prefix"].effect
    assert changes["ip.ipv4_prefix"].affected == (
        "access_log.ip -> access_log.ip_prefix: truncated",
        "device.ip -> device_info.ip_prefix: truncated",
    )
    assert (
        "access_log.session_id -> access_log.session_pseudonym: pseudonymized -> dropped"
        in changes["identifiers.fields"].affected
    )
    assert (
        "access_log.user_id -> access_log.user_pseudonym: pseudonymized"
        not in changes["identifiers.fields"].affected
    )
    # the rotation change alone keeps session pseudonyms: dropping them is identifiers.fields' doing
    assert (
        "access_log.session_id -> access_log.session_pseudonym: pseudonymized"
        in changes["identifiers.rotation"].affected
    )
    assert changes["url.keep_query_params"].effect == (
        "query parameters now dropped: utm_campaign, utm_medium, utm_source"
    )
    assert "plan standard removed" in changes["retention.plans"].effect


def test_diff_flags_a_less_protective_change() -> None:
    finer = parse_policy('version = 1\n[geo]\ngranularity = "city"\n[mail]\nrouting_zip = "zip5"\n')
    coarse = parse_policy(
        'version = 1\n[geo]\ngranularity = "none"\n[mail]\nrouting_zip = "zip3"\n'
    )
    effects = {c.key: c for c in explain_diff(coarse, finer)}
    assert "finer: more identifying" in effects["geo.granularity"].effect
    assert effects["geo.granularity"].affected[0].endswith("dropped -> generalized")
    assert "finer: more identifying" in effects["mail.routing_zip"].effect
    gpc_off = parse_policy("version = 1\n[consent]\nhonour_gpc = false\n")
    (change,) = explain_diff(default_policy(), gpc_off)
    assert change.key == "consent.honour_gpc" and "now ignored" in change.effect
