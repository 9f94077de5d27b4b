import pytest

from anonymizer.errors import PolicyError
from anonymizer.url import UrlScrubber, referrer_host, scrub_host

SCRUB = UrlScrubber.build(["utm_source", "utm_campaign"], ["email", "token", "uuid", "digits>=6"])


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/", "/", ""),
        ("/blog/tags/puppet?flav=rss20", "/blog/tags/puppet", ""),
        ("/a?utm_source=news&email=x@y.com&utm_campaign=fall", "/a",
         "utm_source=news&utm_campaign=fall"),
        ("/a?utm_source=bob@example.com", "/a", "utm_source={email}"),
        ("/a#frag?utm_source=x", "/a", ""),
        ("/users/jane.doe@example.com/orders", "/users/{email}/orders", ""),
        ("/users/jane.doe%40example.com", "/users/{email}", ""),
        ("/orders/123456/items/42", "/orders/{id}/items/42", ""),
        ("/o/550e8400-e29b-41d4-a716-446655440000", "/o/{uuid}", ""),
        ("/reset/9f86d081884c7d659a2feaa0c55ad015aa00ff11", "/reset/{token}", ""),
        ("/o/550e8400e29b41d4a716446655440000", "/o/{uuid}", ""),
        ("/t/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "/t/{token}", ""),
        ("/k/AbCdEfGh1234IjKlMnOp", "/k/{token}", ""),
        ("/p/192.168.1.20/x", "/p/{ip}/x", ""),
        ("/p/2001:db8::1", "/p/{ip}", ""),
        ("/cart;jsessionid=0AAB12CD34EF5678/view", "/cart/view", ""),
        ("/presentations/logstash-monitorama-2013/images/kibana-search.png",
         "/presentations/logstash-monitorama-2013/images/kibana-search.png", ""),
    ],
)  # fmt: skip
def test_scrub(target: str, path: str, query: str) -> None:
    assert SCRUB.scrub(target) == (path, query)


def test_no_allowlist_drops_every_parameter() -> None:
    assert UrlScrubber.build([], []).scrub("/a?utm_source=x") == ("/a", "")


def test_rules_off_keep_segments() -> None:
    assert UrlScrubber.build([], []).scrub("/u/123456") == ("/u/123456", "")


@pytest.mark.parametrize("rule", ["emails", "digits>=0", "digits>6", ""])
def test_unknown_rule_is_refused(rule: str) -> None:
    with pytest.raises(PolicyError) as e:
        UrlScrubber.build([], [rule])
    assert e.value.key == "url.redact[0]"


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("http://semicomplete.com/presentations/x?q=1", "semicomplete.com"),
        ("https://User:pw@Example.COM:8443/path", "example.com"),
        ("https://www.google.com/search?q=my+email+is+a@b.com", "www.google.com"),
        ("//cdn.example.net/x", "cdn.example.net"),
        ("-", ""),
        ("", ""),
        ("not a url", ""),
        ("http://83.149.9.216/page", "{ip}"),
        ("http://[2001:db8::1]:80/page", "{ip}"),
    ],
)
def test_referrer_host(referrer: str, host: str) -> None:
    assert referrer_host(referrer) == host


@pytest.mark.parametrize(
    ("host", "out"),
    [("www.Elastic.co", "www.elastic.co"), ("example.com:8080", "example.com"),
     ("10.1.2.3", "{ip}"), ("10.1.2.3:80", "{ip}"), ("2001:db8::1", "{ip}"), ("", "")],
)  # fmt: skip
def test_scrub_host(host: str, out: str) -> None:
    assert scrub_host(host) == out


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/", "/"),
        ("/orders/42/items", "/orders/{id}/items"),
        ("/users/{email}/orders/{id}", "/users/{id}/orders/{id}"),
        ("/o/{uuid}", "/o/{id}"),
        ("/blob/9f86d081", "/blob/{id}"),
        ("/v2/pricing", "/v2/pricing"),
        ("/presentations/logstash-monitorama-2013/", "/presentations/logstash-monitorama-2013/"),
    ],
)
def test_route_template(path: str, route: str) -> None:
    from anonymizer.url import route_template

    assert route_template(path) == route


@pytest.mark.parametrize(
    ("host", "out"),
    [
        ("3232235777", "{ip}"), ("0300.0250.0.1", "{ip}"), ("0xc0a80001", "{ip}"), ("10.1", "{ip}"),
        ("192.168.1.1.", "{ip}"), ("user:pass@192.168.1.1", "{ip}"), ("[::1]:8080", "{ip}"),
        ("user:pass@Shop.Example.com:443", "shop.example.com"), ("shop.example.com.", "shop.example.com"),
        ("ec2-54-1-2-3.compute-1.amazonaws.com", "ec2-{ip}.compute-1.amazonaws.com"),
        ("10.1.2.3.nip.io", "{ip}.nip.io"), ("cdn1.example.com", "cdn1.example.com"),
    ],
)  # fmt: skip
def test_host_forms(host: str, out: str) -> None:
    assert scrub_host(host) == out


def test_referrer_userinfo_and_ip_forms() -> None:
    assert referrer_host("http://bob:secret@0xc0a80001/x?q=1") == "{ip}"
    assert referrer_host("https://bob:secret@News.Example.com./a") == "news.example.com"


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/u/hello%20john@example.com", "/u/{email}", ""),
        ("/u/john%2540example.com/x", "/u/{email}/x", ""),
        ("/u/a@b@example.com", "/u/{email}", ""),
        ("/ping/host-10.1.2.3", "/ping/{ip}", ""),
        ("/geo/8.8.8.8.json", "/geo/{ip}", ""),
        ("/call/+1-555-123-4567", "/call/{phone}", ""),
        ("/pay/4111-1111-1111-1111/ok", "/pay/{card}/ok", ""),
        ("/iban/DE89370400440532013000", "/iban/{iban}", ""),
        ("/a?utm_source=x;secret=john@example.com", "/a", "utm_source=x"),
        ("/a?secret=1;utm_source=%2B1+555+123+4567", "/a", "utm_source={phone}"),
        ("/a?utm_source=news+letter", "/a", "utm_source=news+letter"),
        ("/v/1.2.3/12:30:45", "/v/1.2.3/12:30:45", ""),
    ],
)
def test_detection_inside_segments(target: str, path: str, query: str) -> None:
    assert SCRUB.scrub(target) == (path, query)
    assert bool(SCRUB.scrub_found(target)[2]) == ("{" in path + query)
