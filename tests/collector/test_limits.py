import pytest

from collector.config import TenantConfig
from collector.errors import ServiceUnavailable, TooManyRequests
from collector.limits import InFlight, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter((TenantConfig("a", max_records_per_second=100), TenantConfig("b")), clock)
    limiter.admit("a", 150)  # the bucket holds 2 s = 200 records
    limiter.admit("a", 100)  # admitted into debt: -50
    with pytest.raises(TooManyRequests) as e:
        limiter.admit("a", 1)
    assert e.value.retry_after == 1  # 50 records of debt at 100/s
    clock.now += 0.6  # +60: back to +10
    limiter.admit("a", 500)  # a big request passes when the tenant is not in debt
    with pytest.raises(TooManyRequests) as e:
        limiter.admit("a", 1)
    assert e.value.retry_after == 5
    for _ in range(100):
        limiter.admit("b", 10_000)  # no limit configured


def test_inflight_slots() -> None:
    inflight = InFlight(2)
    with inflight.slot(), inflight.slot():
        with pytest.raises(ServiceUnavailable) as e, inflight.slot():
            pass
        assert e.value.retry_after == 1
    assert inflight.count == 0
