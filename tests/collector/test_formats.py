"""Access-log formats on text/plain: real sample lines of every format (tests/testdata/formats,
each file naming its source), detection, declared formats, forwarded chains, errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer.errors import RecordInvalid
from anonymizer.validate import DATETIME64_MAX_MS, DATETIME64_MIN_MS, TimeWindow
from collector.combined import parse_combined
from collector.decode import Failed, decode_text
from collector.forwarded import DEFAULT_PROXIES, TrustedProxies, client_address, forwarded
from collector.kinds import ACCESS_LOG
from collector.line_formats import SKIPPED, TextOptions
from collector.log_format import FormatError, compile_apache, compile_nginx

FORMATS = Path(__file__).resolve().parent.parent / "testdata" / "formats"
WINDOW = TimeWindow(0, DATETIME64_MIN_MS, DATETIME64_MAX_MS)
# file -> (records the file holds, records accepted)
EXPECTED = {
    "common.log": (1, 1),
    "combined.log": (6, 6),
    "nginx_main.log": (4, 4),
    "traefik_common.log": (5, 5),
    "iis_w3c.log": (1, 1),
    "cloudfront.log": (3, 3),
    "alb.log": (4, 4),
    "elb.log": (4, 2),  # the TCP and SSL listener entries are not HTTP requests
    "envoy.log": (1, 1),
    "envoy_json.log": (3, 3),
    "haproxy.log": (3, 2),  # the TCP-mode line is not an HTTP request
    "s3.log": (1, 1),
    "squid.log": (3, 3),
    "caddy.log": (1, 1),
    "traefik.log": (3, 3),
}


def sample_lines(name: str) -> list[str]:
    text = (FORMATS / name).read_text()
    return [line for line in text.splitlines() if not line.startswith("//")]


def read(lines: list[str], options: TextOptions | None = None) -> list[Any]:
    body = ("\n".join(lines) + "\n").encode()
    return list(decode_text(body, 10_000, options).items)


def accepted(items: list[Any]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        if item is SKIPPED or isinstance(item, Failed):
            continue
        try:
            ACCESS_LOG.validate(item, WINDOW)
        except RecordInvalid:
            continue
        out.append(item)
    return out


def tally(name: str) -> tuple[int, int]:
    items = read(sample_lines(name))
    records = [i for i in items if i is not SKIPPED]
    return len(records), len(accepted(items))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_sample_lines_of_every_format(name: str) -> None:
    assert tally(name) == EXPECTED[name]


def test_every_sample_file_names_its_source_and_is_listed() -> None:
    files = {p.name for p in FORMATS.glob("*.log")}
    assert files == set(EXPECTED)
    for name in files:
        assert re.search(r"^// (source|shape): https?://", (FORMATS / name).read_text(), re.M)


def test_fields_of_each_format() -> None:
    (alb, *_) = accepted(read(sample_lines("alb.log")))
    assert alb["ip"] == "192.168.131.39" and alb["status"] == 200
    assert alb["method"] == "GET" and alb["path"] == "http://www.example.com:80/"
    assert alb["duration_ms"] == pytest.approx(1.0) and alb["user_agent"] == "curl/7.46.0"
    (cf, *_) = accepted(read(sample_lines("cloudfront.log")))
    assert cf["time"] == "2019-12-04T21:02:31Z" and cf["ip"] == "192.0.2.100"
    assert cf["duration_ms"] == pytest.approx(1.0) and cf["user_agent"].startswith("Mozilla/5.0 (")
    assert cf["host"] == "d111111abcdef8.cloudfront.net" and cf["bytes"] == 392
    (iis,) = accepted(read(sample_lines("iis_w3c.log")))
    assert iis["path"] == "/images/picture.jpg" and iis["user_agent"].startswith("Mozilla/4.0 (")
    (caddy,) = accepted(read(sample_lines("caddy.log")))
    assert caddy["time"] == 1646861401524 and caddy["duration_ms"] == pytest.approx(0.929675)
    assert caddy["user_agent"] == "curl/7.82.0" and caddy["bytes"] == 10900
    (traefik, *_) = accepted(read(sample_lines("traefik.log")))
    assert traefik["duration_ms"] == pytest.approx(31.482552) and traefik["host"] == "gw.local"
    (envoy,) = accepted(read(sample_lines("envoy.log")))
    assert envoy["ip"] == "10.0.35.28" and envoy["status"] == 204
    assert envoy["duration_ms"] == 226.0 and envoy["host"] == "locations"
    istio, *_ = accepted(read(sample_lines("envoy_json.log")))
    assert istio["ip"] == "10.0.1.38:35842" and istio["status"] == 418
    assert istio["duration_ms"] == 2.0 and istio["host"] == "httpbin:8000"
    haproxy, timeout = accepted(read(sample_lines("haproxy.log")))
    assert haproxy["ip"] == "10.0.1.2" and haproxy["duration_ms"] == 109.0
    assert haproxy["time"] == 1233922454655 and haproxy["path"] == "/index.html"
    assert timeout["status"] == 408 and "method" not in timeout
    (s3,) = accepted(read(sample_lines("s3.log")))
    assert s3["host"] == "awsexamplebucket1" and s3["duration_ms"] == 7.0 and s3["bytes"] == 113
    squid = accepted(read(sample_lines("squid.log")))
    assert squid[0]["user_id"] == "labuser" and squid[0]["duration_ms"] == 120.0
    assert squid[2]["host"] == "ecs.us-west-2.amazonaws.com" and "path" not in squid[2]
    (traefik_clf, *_) = accepted(read(sample_lines("traefik_common.log")))
    assert traefik_clf["duration_ms"] == 7.0 and traefik_clf["status"] == 401


def test_real_nginx_lines_escapes_and_chain() -> None:
    lines = accepted(read(sample_lines("nginx_main.log")))
    assert lines[2]["user_agent"] == 'quote " inside'  # nginx wrote the quote as \x22
    assert lines[3]["ip"] == "203.0.113.50" and lines[0]["ip"] == "127.0.0.1"


def test_cloudfront_without_its_header_reads_the_default_columns() -> None:
    lines = [line for line in sample_lines("cloudfront.log") if not line.startswith("#")]
    assert len(accepted(read(lines))) == 3


def test_nginx_main_takes_the_client_from_the_chain() -> None:
    line = (
        '10.1.2.3 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 5 "-" "curl/8" '
        '"198.51.100.7, 203.0.113.9, 10.0.0.2"'
    )
    assert parse_combined(line)["ip"] == "203.0.113.9"  # first untrusted from the right
    untrusted_peer = line.replace("10.1.2.3", "192.0.2.1", 1)
    assert parse_combined(untrusted_peer)["ip"] == "192.0.2.1"  # a peer we do not trust
    no_chain = line.replace('"198.51.100.7, 203.0.113.9, 10.0.0.2"', '"-"')
    assert parse_combined(no_chain)["ip"] == "10.1.2.3"


def test_vhost_combined_and_appended_times() -> None:
    # Debian's vhost_combined: %v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"
    vhost = (
        'www.example.com:443 198.51.100.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" '
        '200 2326 "-" "curl/8"'
    )
    assert parse_combined(vhost)["host"] == "www.example.com"
    base = '198.51.100.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "c"'
    assert parse_combined(base + " 0.250 0.249")["duration_ms"] == 250.0
    assert parse_combined(base + ' "-" rt=0.5 uct="0.000" urt="0.4"')["duration_ms"] == 500.0
    assert "duration_ms" not in parse_combined(base + " 1234")  # %D or %T? not guessed


def test_trusted_proxies_walk() -> None:
    trusted = TrustedProxies.parse(["10.0.0.0/8", "2001:db8::/32"])
    assert client_address("10.0.0.1", ["198.51.100.1", "10.0.0.9"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.1", ["10.0.0.7", "10.0.0.9"], trusted) == "10.0.0.7"
    assert client_address("10.0.0.1", ["[2001:db8::5]:443", "203.0.113.5:80"], trusted) == (
        "203.0.113.5"
    )
    for bad in (["unknown"], ["_hidden"], [""], ["999.1.1.1"], ["x" * 5000]):
        with pytest.raises(RecordInvalid) as e:
            client_address("10.0.0.1", bad, trusted)
        assert e.value.field == "ip" and "x" * 20 not in e.value.error
    # an untrusted entry nearer than the bad one: the bad one is never reached
    assert client_address("10.0.0.1", ["unknown", "192.0.2.8"], trusted) == "192.0.2.8"
    assert forwarded(
        'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"'
    ) == [
        "192.0.2.60",
        "[2001:db8:cafe::17]:4711",
    ]
    with pytest.raises(ValueError, match="entry 1"):
        TrustedProxies.parse(["10.0.0.0/8", "not a cidr"])


def test_declared_nginx_and_apache_formats() -> None:
    nginx = compile_nginx(
        "log_format_body '$remote_addr - $remote_user [$time_local] \"$request\" ' "
        '\'$status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time\';'.removeprefix(
            "log_format_body "
        )
    )
    line = '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.1" 200 9 "-" "ua" 0.042'
    assert nginx.parse(line, DEFAULT_PROXIES)["duration_ms"] == pytest.approx(42.0)
    apache = compile_apache(r"%h %l %u %t \"%r\" %>s %b %D %{ms}T")
    rec = apache.parse(
        '192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 1500 2', DEFAULT_PROXIES
    )
    assert rec["duration_ms"] == 1.5 and rec["ip"] == "192.0.2.1"
    seconds = compile_apache("%a %t %T").parse(
        "192.0.2.1 [10/Oct/2000:13:55:36 -0700] 3", DEFAULT_PROXIES
    )
    assert seconds["duration_ms"] == 3000.0
    xff = compile_apache(r'%h %t "%r" %>s "%{X-Forwarded-For}i"').parse(
        '10.0.0.5 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 "192.0.2.44, 10.0.0.6"',
        DEFAULT_PROXIES,
    )
    assert xff["ip"] == "192.0.2.44"
    for bad in ("", "$a$b", "no fields here", "x" * 3000, "$a\n$b"):
        with pytest.raises(FormatError):
            compile_nginx(bad)
    with pytest.raises(RecordInvalid, match="declared nginx format"):
        nginx.parse("garbage", DEFAULT_PROXIES)


def test_declared_format_is_the_only_one_tried() -> None:
    options = TextOptions(declared=compile_nginx("$remote_addr [$time_local] $status"))
    items = read(
        ["192.0.2.1 [10/Oct/2000:13:55:36 -0700] 404", sample_lines("common.log")[0]], options
    )
    assert items[0]["status"] == 404
    assert isinstance(items[1], Failed) and "declared nginx format" in items[1].error.error


def test_unparseable_line_names_the_formats_tried_never_the_line() -> None:
    secret = "203.0.113.77 alice@example.com token=s3cr3t"
    (item,) = read([secret])
    assert isinstance(item, Failed) and item.error.field == "line"
    for name in (
        "combined",
        "alb",
        "elb",
        "envoy",
        "haproxy",
        "s3",
        "squid",
        "cloudfront",
        "w3c",
        "json",
    ):
        assert name in item.error.error
    assert "203.0.113" not in item.error.error and "alice" not in item.error.error
    (only,) = read([secret], TextOptions(format="alb"))
    assert isinstance(only, Failed) and "alb" in only.error.error


def test_service_and_host_from_the_request() -> None:
    options = TextOptions(service="shop", host="www.example.org")
    (rec,) = read(sample_lines("common.log"), options)
    assert rec["service"] == "shop" and rec["host"] == "www.example.org"
    (alb, *_) = read(sample_lines("alb.log"), options)
    assert alb["service"] == "shop" and alb["path"].startswith("http://www.example.com")


def test_a_combined_line_after_a_w3c_header_is_still_read() -> None:
    items = read([*sample_lines("iis_w3c.log"), *sample_lines("common.log"), "2002-05-02 x"])
    assert items[5]["user_id"] == "frank"
    assert isinstance(items[6], Failed) and "w3c" in items[6].error.error


def test_w3c_directives_keep_line_indexes() -> None:
    items = read([*sample_lines("iis_w3c.log"), "not a line"])
    assert [i is SKIPPED for i in items] == [True, True, True, True, False, False]
    assert isinstance(items[-1], Failed)


def test_json_seq_and_numeric_strings() -> None:
    from collector.decode import decode_json_seq

    body = b'\x1e{"ip":"192.0.2.1","status":"200"}\n\x1e{\n "ip": "192.0.2.2"\n}\n\x1e{bad\n'
    decoded = decode_json_seq(body, 10)
    items = list(decoded.items)
    assert decoded.count == 3 and items[0]["status"] == "200" and items[1]["ip"] == "192.0.2.2"
    assert isinstance(items[2], Failed)
    assert ACCESS_LOG.validate(items[0], WINDOW).status == 200
    for bad in ("200.0", " 200", "+200", "0200", "2e2", "", "\uff12\uff10\uff10", "200\n"):
        with pytest.raises(RecordInvalid, match="status"):
            ACCESS_LOG.validate({"ip": "192.0.2.1", "status": bad}, WINDOW)
    assert ACCESS_LOG.validate({"ip": "192.0.2.1", "bytes": "0"}, WINDOW).bytes == 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=' "[]-:./0123456789abcdefGET\\\t{}#,=', max_size=300))
def test_any_line_is_a_record_or_a_named_error(line: str) -> None:
    for item in read([line.replace("\n", " ")]):
        assert item is SKIPPED or isinstance(item, dict | Failed)
        if isinstance(item, Failed):
            assert item.error.field and item.error.error


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["$remote_addr", "$status", " ", '"', "[", "]", "x", "$request"]),
        max_size=12,
    )
)
def test_any_nginx_format_compiles_or_is_refused(parts: list[str]) -> None:
    text = "".join(parts)
    try:
        fmt = compile_nginx(text)
    except FormatError:
        return
    for line in ("\x00" * 50, '1.2.3.4 "GET / HTTP/1.1" [x] 200', ""):
        try:
            assert isinstance(fmt.parse(line, DEFAULT_PROXIES), dict)
        except RecordInvalid as e:
            assert e.field and "1.2.3.4" not in e.error


def test_nginx_escape_json_lines_use_the_variable_names() -> None:
    line = (
        '{"time_iso8601":"2026-11-25T10:05:03+00:00","remote_addr":"10.0.0.4",'
        '"http_x_forwarded_for":"198.51.100.23","request":"GET /a?b=1 HTTP/1.1","status":"200",'
        '"body_bytes_sent":"12","request_time":"0.010","http_user_agent":"curl/8"}'
    )
    (rec,) = read([line])
    assert rec["ip"] == "198.51.100.23" and rec["path"] == "/a?b=1" and rec["status"] == 200
    assert rec["duration_ms"] == pytest.approx(10.0) and rec["time"] == "2026-11-25T10:05:03+00:00"
    (bad,) = read(['{"some": "thing"}'])
    assert isinstance(bad, Failed) and "caddy, traefik, envoy-json, nginx-json" in bad.error.error
