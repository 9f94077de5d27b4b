"""`ip_prefix`: an address is stored as its network, the prefix per family from the policy."""

import pytest

from anonymizer.ip import parse_ip
from anonymizer.operators.ip_prefix import IpPrefix
from anonymizer.types import AccessRecord, DeviceRecord
from tests.anonymizer.operators.support import DEFAULT, apply, policy, rule, sample

IP = rule("access_log", "ip")


@pytest.mark.parametrize(
    ("address", "text", "network"),
    [
        ("83.149.9.216", "", "83.149.9.0/24"),
        ("83.149.9.216", "[ip]\nipv4_prefix = 16\n", "83.149.0.0/16"),
        ("2001:db8:1:2::3", "", "2001:db8:1::/48"),
        ("2001:db8:1:2::3", "[ip]\nipv6_prefix = 32\n", "2001:db8::/32"),
        ("::ffff:10.1.2.3", "", "10.1.2.0/24"),  # IPv4-mapped: cut as IPv4
    ],
)
def test_apply_cuts_to_the_policys_prefix(address: str, text: str, network: str) -> None:
    record = AccessRecord(time_ms=0, ip=parse_ip(address))
    assert apply(IP, record, policy(text)) == {"ip_prefix": network}


def test_no_address_stores_nothing() -> None:
    device = rule("device", "ip")
    assert apply(device, DeviceRecord(time_ms=0, device_id="d")) == {"ip_prefix": ""}


def test_describe_and_effect() -> None:
    assert IpPrefix().describe(IP, DEFAULT).operator == "truncated"
    coarser = IpPrefix().effect("ip.ipv4_prefix", DEFAULT, policy("[ip]\nipv4_prefix = 16\n"))
    assert (
        coarser
        == "IPv4 addresses are stored as /16 networks instead of /24 (coarser: less identifying)"
    )
    finer = IpPrefix().effect("ip.ipv6_prefix", DEFAULT, policy("[ip]\nipv6_prefix = 56\n"))
    assert (
        finer
        == "IPv6 addresses are stored as /56 networks instead of /48 (finer: more identifying)"
    )


def test_outcome_names_the_prefix_of_the_addresss_family() -> None:
    out = IpPrefix().outcome(IP, sample("access_log", {"ip": "2001:db8::1"}))
    assert (out.operator, out.detail, out.rule) == ("truncated", "cut to /48", "ip.ipv6_prefix")
