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
