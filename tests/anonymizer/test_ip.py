import pytest

from anonymizer.errors import InvalidValueError
from anonymizer.ip import parse_ip, truncate_ip


@pytest.mark.parametrize(
    ("text", "version", "canonical"),
    [
        ("83.149.9.216", 4, "83.149.9.216"),
        ("83.149.9.216:443", 4, "83.149.9.216"),
        (" 10.0.0.1 ", 4, "10.0.0.1"),
        ("::ffff:83.149.9.216", 4, "83.149.9.216"),
        ("[::ffff:83.149.9.216]:8080", 4, "83.149.9.216"),
        ("2001:DB8::1", 6, "2001:db8::1"),
        ("[2001:db8::1]:443", 6, "2001:db8::1"),
        ("fe80::1%eth0", 6, "fe80::1"),
    ],
)
def test_parse_normalizes(text: str, version: int, canonical: str) -> None:
    ip = parse_ip(text)
    assert (ip.version, ip.text) == (version, canonical)


@pytest.mark.parametrize("text", ["", "nope", "1.2.3", "1.2.3.256", "1.2.3.4.5", "::g", "[::1"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidValueError) as e:
        parse_ip(text)
    assert text.strip() not in str(e.value) or not text.strip()  # the value is never echoed


@pytest.mark.parametrize(
    ("text", "v4", "v6", "expected"),
    [
        ("83.149.9.216", 24, 48, "83.149.9.0/24"),
        ("83.149.9.216", 16, 48, "83.149.0.0/16"),
        ("83.149.9.216", 20, 48, "83.149.0.0/20"),
        ("83.149.9.216", 32, 48, "83.149.9.216/32"),
        ("83.149.9.216", 0, 48, "0.0.0.0/0"),
        ("::ffff:83.149.9.216", 24, 48, "83.149.9.0/24"),  # mapped: cut as IPv4, never /48
        ("2001:db8:abcd:1234:5678::1", 24, 48, "2001:db8:abcd::/48"),
        ("2001:db8:abcd:1234:5678::1", 24, 56, "2001:db8:abcd:1200::/56"),
        ("2001:db8:abcd:1234:5678::1", 24, 0, "::/0"),
    ],
)
def test_truncate(text: str, v4: int, v6: int, expected: str) -> None:
    assert truncate_ip(parse_ip(text), v4, v6) == expected


def test_repr_hides_the_address() -> None:
    assert "83.149" not in repr(parse_ip("83.149.9.216"))


@pytest.mark.parametrize(
    ("text", "v4"),
    [
        ("::ffff:198.51.100.11", "198.51.100.11"),  # IPv4-mapped
        ("::ffff:0:198.51.100.10", "198.51.100.10"),  # IPv4-translated
        ("::198.51.100.9", "198.51.100.9"),  # IPv4-compatible
        ("2002:c633:6405::1", "198.51.100.5"),  # 6to4
        ("2002:cb00:7163:1::abcd", "203.0.113.99"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:39cc:9bf9", "198.51.100.6"),  # Teredo: client inverted
        ("64:ff9b::c633:6407", "198.51.100.7"),  # NAT64 well-known prefix
        ("64:ff9b:1:c633:64:800::", "198.51.100.8"),  # NAT64 local-use, RFC 6052 /48 layout
        ("[2002:c633:6405::1]:443", "198.51.100.5"),
    ],
)
def test_embedded_ipv4_is_the_ipv4_address(text: str, v4: str) -> None:
    ip = parse_ip(text)
    assert (ip.version, ip.text) == (4, v4)
    stored = truncate_ip(ip, 24, 64)
    assert stored == v4.rpartition(".")[0] + ".0/24"


@pytest.mark.parametrize("text", ["::", "::1", "2001:db8::1", "2001:db8:0:1::2", "fe80::1"])
def test_plain_ipv6_stays_ipv6(text: str) -> None:
    assert parse_ip(text).version == 6


@pytest.mark.parametrize(
    "text",
    [
        "[::1]garbage", "[::1]:", "[::1]:99999", "[::1]:8o", "1.2.3.4%eth0", "1.2.3.4:",
        "1.2.3.4:http", "2001:db8::1%eth0", "fe80::1%", "fe80::1%eth 0", "[1.2.3.4]x",
    ],
)  # fmt: skip
def test_strict_forms_are_not_addresses(text: str) -> None:
    with pytest.raises(InvalidValueError):
        parse_ip(text)


def test_zone_only_on_link_local() -> None:
    assert parse_ip("fe80::1%eth0").text == "fe80::1"
    assert parse_ip("[fe80::1%25eth0]:80".replace("%25", "%")).text == "fe80::1"
