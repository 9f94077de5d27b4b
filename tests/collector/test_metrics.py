"""The `/metrics` exposition comes from prometheus_client: escaping, HELP/TYPE, visibility."""

from collections import Counter

import orjson
from prometheus_client.parser import text_string_to_metric_families

from collector.metrics import COUNTERS, Metrics

NASTY = 'a"b\\c\nd'  # a quote, a backslash and a newline


def test_label_values_are_escaped_and_read_back_unchanged() -> None:
    m = Metrics()
    m.rejected[("access_log", NASTY)] += 2
    m.consent[("acme", NASTY, "gpc")] += 1
    text = m.render(None).decode()
    assert (
        'collector_records_rejected_total{field="a\\"b\\\\c\\nd",kind="access_log"} 2.0\n' in text
    )
    assert "\nd" not in text.replace("\\nd", "")  # no raw newline inside a sample line
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert (
        samples[("collector_records_rejected_total", (("field", NASTY), ("kind", "access_log")))]
        == 2
    )
    key = (("kind", NASTY), ("reason", "gpc"), ("tenant", "acme"))
    assert samples[("collector_tenant_records_consent_limited_total", key)] == 1


def test_every_family_has_help_and_type_even_without_samples() -> None:
    text = Metrics().render(None).decode()
    lines = text.splitlines()
    typed = [ln.split()[2] for ln in lines if ln.startswith("# TYPE ")]
    helped = [ln.split()[2] for ln in lines if ln.startswith("# HELP ")]
    assert typed == helped and len(typed) == 9
    assert all(name.endswith("_total") for name in typed)  # counters keep their exposed names


def test_tenant_series_only_for_the_tenants_a_caller_may_see() -> None:
    m = Metrics()
    m.consent[("acme", "event", "gpc")] += 2
    m.consent[("globex", "event", "gpc")] += 3
    public = m.render(()).decode()
    assert "tenant" not in public and "acme" not in public and "globex" not in public
    assert 'collector_records_consent_limited_total{kind="event",reason="gpc"} 5.0' in public
    own = m.render(frozenset({"acme"})).decode()
    assert 'tenant="acme"' in own and "globex" not in own
    every = m.render(None).decode()
    assert 'tenant="acme"' in every and 'tenant="globex"' in every


def test_the_workers_counters_are_added_to_every_family_including_outcomes() -> None:
    """Under `serve --workers N` the primary renders its counters plus each ingest worker's
    snapshot (JSON: keys come back as lists); a counter left out of the merge failed /metrics."""

    worker = Metrics()
    worker.outcomes[("acme", "access_log", "refused", "unsupported_media_type")] += 2
    worker.rejected[("access_log", "ip")] += 1
    primary = Metrics()
    primary.outcomes[("acme", "access_log", "refused", "unsupported_media_type")] += 1
    snapshot = orjson.loads(orjson.dumps(worker.snapshot()))
    primary.others = lambda: [snapshot]
    text = primary.render(None).decode()
    assert (
        'collector_tenant_records_outcomes_total{kind="access_log",outcome="refused",'
        'reason="unsupported_media_type",tenant="acme"} 3.0' in text
    )
    assert 'collector_records_rejected_total{field="ip",kind="access_log"} 1.0' in text
    fresh = Metrics()
    assert set(COUNTERS) == {n for n, v in vars(fresh).items() if isinstance(v, Counter)}
