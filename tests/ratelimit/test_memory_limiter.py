"""The in-process token bucket, exactly, on a fake clock."""

from __future__ import annotations

import pytest
from tests.ratelimit.helpers import FakeClock

from netweave.security.ratelimit import MemoryRateLimiter, RateLimiter


async def admitted(limiter: RateLimiter, key: str, n: int, *, rate: float, burst: int) -> int:
    results = [await limiter.acquire(key, rate=rate, burst=burst) for _ in range(n)]
    return results.count(0.0)


async def test_a_full_bucket_admits_the_burst_then_says_when(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    for _ in range(3):
        assert await limiter.acquire("acme", rate=2.0, burst=3) == 0.0
    assert await limiter.acquire("acme", rate=2.0, burst=3) == 0.5
    assert await limiter.acquire("acme", rate=2.0, burst=3) == 0.5  # a refusal takes nothing


async def test_refill_at_the_rate(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    assert await admitted(limiter, "acme", 3, rate=2.0, burst=3) == 3
    clock.advance(0.25)  # half a token
    assert await limiter.acquire("acme", rate=2.0, burst=3) == 0.25
    clock.advance(0.25)
    assert await limiter.acquire("acme", rate=2.0, burst=3) == 0.0
    assert await limiter.acquire("acme", rate=2.0, burst=3) == 0.5
    clock.advance(1.0)  # two tokens
    assert await admitted(limiter, "acme", 5, rate=2.0, burst=3) == 2


async def test_refill_stops_at_the_burst(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    assert await admitted(limiter, "acme", 4, rate=0.5, burst=4) == 4
    assert await limiter.acquire("acme", rate=0.5, burst=4) == 2.0
    clock.advance(3600)
    assert await admitted(limiter, "acme", 10, rate=0.5, burst=4) == 4


async def test_keys_are_independent(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    assert await admitted(limiter, "acme", 5, rate=1.0, burst=2) == 2
    assert await admitted(limiter, "globex", 5, rate=1.0, burst=2) == 2
    assert await limiter.acquire("acme", rate=1.0, burst=2) == 1.0


async def test_the_number_of_keys_is_bounded_least_recently_used_first(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock, max_keys=2)
    assert await admitted(limiter, "a", 2, rate=1.0, burst=1) == 1
    assert await admitted(limiter, "b", 2, rate=1.0, burst=1) == 1
    assert await limiter.acquire("a", rate=1.0, burst=1) == 1.0  # a is now the most recent
    assert await limiter.acquire("c", rate=1.0, burst=1) == 0.0  # evicts b
    assert len(limiter) == 2
    assert await limiter.acquire("a", rate=1.0, burst=1) == 1.0  # kept, still empty
    assert await limiter.acquire("b", rate=1.0, burst=1) == 0.0  # forgotten: full again
    await limiter.aclose()
    assert len(limiter) == 0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (float("nan"), 1), (1.0, 0)])
async def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        await MemoryRateLimiter().acquire("acme", rate=rate, burst=burst)
