"""The service serves the pure library's kinds (collector/kinds.py adds only routes and
enrichment), and subject export / deletion find their columns through the registry."""

from dataclasses import replace

from anonymizer.kinds import KINDS as RECORD_KINDS
from anonymizer.rules import RULES
from collector.kinds import KINDS, OTLP_UNMAPPED
from collector.subjects import SUBJECT_COLUMNS, SubjectColumn, subject_columns


def test_every_kind_of_the_registry_is_served_as_it_is() -> None:
    assert list(KINDS) == list(RECORD_KINDS)
    for name, served in KINDS.items():
        kind = RECORD_KINDS[name]
        assert (served.name, served.table, served.fields) == (kind.name, kind.table, kind.fields)
        assert served.validate == kind.validate
    routes = [k.route for k in (*KINDS.values(), OTLP_UNMAPPED)]
    assert len(set(routes)) == len(routes) and all(r.startswith("/") for r in routes)
    assert [k.name for k in KINDS.values() if k.allow_text] == ["access_log"]
    assert OTLP_UNMAPPED.name not in RECORD_KINDS


def test_every_identifier_rule_is_covered_by_subject_export_and_delete() -> None:
    ruled = [r for r in RULES if r.identifier]
    assert ruled
    for r in ruled:
        for column in r.columns:
            assert (
                SubjectColumn(RECORD_KINDS[r.kind].table, column) in SUBJECT_COLUMNS[r.identifier]
            )
    # the identifiers a request can name reach every table that holds their pseudonym
    assert {c.table for c in SUBJECT_COLUMNS["user_id"]} == {
        "access_log",
        "device_info",
        "usage_events",
    }
    assert SUBJECT_COLUMNS["imb.serial"] == (SubjectColumn("mail_scans", "serial_pseudonym"),)


def test_a_new_kind_with_a_user_id_needs_no_edit_in_subjects() -> None:
    # a real registry kind stored in another table: its user pseudonyms are searched there too
    devices_v2 = replace(RECORD_KINDS["device"], table="device_info_v2")
    columns = subject_columns([*RECORD_KINDS.values(), devices_v2])
    assert SubjectColumn("device_info_v2", "user_pseudonym") in columns["user_id"]
    assert SubjectColumn("device_info_v2", "device_pseudonym") in columns["device_id"]
    assert set(columns["user_id"]) - set(SUBJECT_COLUMNS["user_id"]) == {
        SubjectColumn("device_info_v2", "user_pseudonym")
    }
