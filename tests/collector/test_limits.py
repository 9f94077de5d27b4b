import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_one_tenant_cannot_take_every_slot() -> None:
    inflight = InFlight(4, per_tenant=2)
    with inflight.slot("a"), inflight.slot("a"):
        with pytest.raises(ServiceUnavailable) as e, inflight.slot("a"):
            pass
        assert e.value.retry_after == 1
        assert "max_inflight_per_tenant = 2" in e.value.detail
        with inflight.slot("b"), inflight.slot("b"):  # the others still get theirs
            with pytest.raises(ServiceUnavailable) as e, inflight.slot("c"):
                pass
            assert "max_inflight_requests = 4" in e.value.detail  # the total still holds
    assert inflight.count == 0 and inflight.by_tenant == {}


@given(
    st.lists(st.tuples(st.booleans(), st.sampled_from("abc")), max_size=60),
    st.integers(1, 6),
    st.integers(1, 6),
)
def test_slots_never_exceed_either_limit(
    ops: list[tuple[bool, str]], limit: int, share: int
) -> None:
    """Any interleaving of takes and releases: the total and each tenant stay within bounds,
    and every slot taken is given back."""
    inflight = InFlight(limit, per_tenant=share)
    held: list[tuple[str, contextlib.ExitStack]] = []
    for take, tenant in ops:
        if take:
            stack = contextlib.ExitStack()
            try:
                stack.enter_context(inflight.slot(tenant))
            except ServiceUnavailable:
                assert inflight.count == limit or inflight.by_tenant.get(tenant) == min(
                    share, limit
                )
                continue
            held.append((tenant, stack))
        elif held:
            held.pop(0)[1].close()
        assert inflight.count <= limit and inflight.count == len(held)
        assert all(n <= min(share, limit) for n in inflight.by_tenant.values())
    for _, stack in held:
        stack.close()
    assert inflight.count == 0 and inflight.by_tenant == {}
