"""`ip_family`: an address is reduced to 4 or 6."""

from anonymizer.ip import parse_ip
from anonymizer.operators.ip_family import IpFamily
from anonymizer.types import AccessRecord, DeviceRecord
from tests.anonymizer.operators.support import DEFAULT, apply, rule, sample

FAMILY = rule("access_log", "ip (family)")


def test_apply_keeps_only_the_family() -> None:
    assert apply(FAMILY, AccessRecord(time_ms=0, ip=parse_ip("192.0.2.1"))) == {"ip_version": 4}
    assert apply(FAMILY, AccessRecord(time_ms=0, ip=parse_ip("2001:db8::1"))) == {"ip_version": 6}
    no_ip = DeviceRecord(time_ms=0, device_id="d")
    assert apply(rule("device", "ip (family)"), no_ip) == {"ip_version": 0}


def test_describe_and_outcome() -> None:
    assert IpFamily().describe(FAMILY, DEFAULT).rule == "fixed rule"
    assert IpFamily().outcome(FAMILY, sample("access_log", {"ip": "::1"})).detail == "IPv6"
    assert IpFamily.policy_keys == ()
