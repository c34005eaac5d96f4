"""The shared token bucket in a real Redis: two limiters with their own clients act as
replicas; timing-dependent checks assert ranges, and every wait on real time is short."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis
from tests.ratelimit.conftest import LimiterFactory
from tests.ratelimit.helpers import CountingRedis, FakeClock, Recorder
from tests.redisserver import redis_server

from netweave.security import ratelimit
from netweave.security.ratelimit import RedisRateLimiter


async def fire(limiter: RedisRateLimiter, key: str, n: int, *, rate: float, burst: int) -> int:
    """Acquires ``n`` tokens concurrently; how many were admitted."""
    results = await asyncio.gather(
        *(limiter.acquire(key, rate=rate, burst=burst) for _ in range(n))
    )
    assert all(r >= 0.0 for r in results)
    return results.count(0.0)


def bucket_tokens(url: str, limiter: RedisRateLimiter, key: str) -> float:
    with redis.Redis.from_url(url) as client:
        value = client.hget(limiter.bucket_key(key), "tokens")
    assert isinstance(value, bytes)
    return float(value)


@pytest.mark.parametrize("batch", [0.1, 0.5, 1.0])
async def test_replicas_share_one_bucket_and_never_exceed_the_burst(
    make_limiter: LimiterFactory, batch: float
) -> None:
    one, two = make_limiter(batch=batch), make_limiter(batch=batch)
    counts = await asyncio.gather(
        fire(one, "acme", 30, rate=0.01, burst=20), fire(two, "acme", 30, rate=0.01, burst=20)
    )
    assert sum(counts) == 20
    assert one.draws > 0 and two.draws > 0


async def test_concurrent_acquires_share_one_draw(redis_url: str, redis_prefix: str) -> None:
    client = CountingRedis.from_url(redis_url)
    limiter = RedisRateLimiter(client, prefix=redis_prefix, batch=0.1)
    try:
        assert await fire(limiter, "acme", 64, rate=0.01, burst=1000) == 64
    finally:
        await limiter.aclose()
        await client.aclose()
    # the draws double while they run out (1, 2, 4, ... 64): a handful of round trips, not 64
    assert 1 < client.script_calls <= 8
    assert client.script_calls == limiter.draws


async def test_a_lapsed_batch_is_dropped_and_the_next_draw_is_smaller(
    make_limiter: LimiterFactory, redis_url: str, clock: FakeClock
) -> None:
    limiter = make_limiter(batch=0.1, lease_ttl=1.0, clock=clock)  # draws of at most 10
    for _ in range(16):  # draws of 1, 2, 4, 8, then 10 (the ceiling): 25 tokens
        assert await limiter.acquire("acme", rate=0.001, burst=100) == 0.0
    assert round(bucket_tokens(redis_url, limiter, "acme")) == 75
    clock.advance(1.5)  # the 9 tokens still held lapse: lost, not given back
    assert await limiter.acquire("acme", rate=0.001, burst=100) == 0.0
    assert round(bucket_tokens(redis_url, limiter, "acme")) == 70  # a draw of 10 // 2


async def test_the_bucket_refills_at_the_rate(make_limiter: LimiterFactory) -> None:
    rate, burst = 20.0, 20
    one, two = make_limiter(), make_limiter()
    started = time.monotonic()
    first = await fire(one, "acme", 25, rate=rate, burst=burst)
    first += await fire(two, "acme", 25, rate=rate, burst=burst)
    emptied = time.monotonic()
    assert burst <= first <= burst + rate * (emptied - started) + 1
    await asyncio.sleep(0.5)
    second = await fire(one, "acme", 15, rate=rate, burst=burst)
    second += await fire(two, "acme", 15, rate=rate, burst=burst)
    elapsed = time.monotonic() - started
    assert rate * 0.5 - 2 <= second <= rate * (time.monotonic() - emptied) + 1
    assert first + second <= burst + rate * elapsed


async def test_a_refusal_says_when_the_next_token_comes(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    rate = 4.0
    assert await fire(limiter, "acme", 2, rate=rate, burst=2) == 2
    wait = await limiter.acquire("acme", rate=rate, burst=2)
    assert 0.0 < wait <= 1 / rate + 0.05
    draws = limiter.draws
    again = await limiter.acquire("acme", rate=rate, burst=2)
    assert 0.0 < again <= wait  # answered locally: no second round trip for a known wait
    assert limiter.draws == draws
    await asyncio.sleep(wait + 0.02)
    assert await limiter.acquire("acme", rate=rate, burst=2) == 0.0


async def test_keys_are_independent_and_idle_buckets_vanish(
    make_limiter: LimiterFactory, redis_url: str
) -> None:
    limiter = make_limiter()
    assert await fire(limiter, "acme", 5, rate=0.01, burst=3) == 3
    assert await fire(limiter, "globex", 5, rate=0.01, burst=3) == 3
    assert await limiter.acquire("acme", rate=0.01, burst=3) > 0.0
    fast = make_limiter()
    assert await fire(fast, "initech", 2, rate=100.0, burst=5) == 2
    with redis.Redis.from_url(redis_url) as client:
        key = fast.bucket_key("initech")
        # full again within ~20 ms, and dropped then (-2: gone already on a slow machine)
        assert client.pttl(key) in (-2, *range(1, 22))
        await asyncio.sleep(0.2)
        assert client.exists(key) == 0
        assert client.exists(limiter.bucket_key("acme")) == 1


async def test_fails_open_while_redis_is_down_and_recovers(
    make_limiter: LimiterFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Recorder()
    monkeypatch.setattr(ratelimit, "_log", log)
    with redis_server(tmp_path / "redis") as server:
        limiter = make_limiter(url=server.url, outage_backoff=0.0)
        patient = make_limiter(url=server.url, outage_backoff=60.0)
        assert await fire(limiter, "acme", 3, rate=0.01, burst=2) == 2
        server.kill()
        for _ in range(10):  # every one tries Redis, fails, and is admitted
            assert await limiter.acquire("globex", rate=0.01, burst=2) == 0.0
        assert limiter.admitted_open == 10
        warning = "rate limiting suspended: Redis did not answer, requests are admitted"
        assert log.at("warning") == [warning]  # once, not once per request
        for _ in range(5):  # after one failure, it does not ask again during the backoff
            assert await patient.acquire("globex", rate=0.01, burst=2) == 0.0
        assert patient.draws == 1
        assert log.at("warning") == [warning, warning]  # one for each limiter
        server.restart()
        assert await fire(limiter, "initech", 4, rate=0.01, burst=2) == 2
        assert log.at("info") == ["rate limiting resumed: Redis answers again"]
        assert limiter.admitted_open == 10


async def test_closing_cancels_a_draw_in_flight(
    make_limiter: LimiterFactory, tmp_path: Path
) -> None:
    with redis_server(tmp_path / "redis") as server:
        limiter = make_limiter(url=server.url, timeout=5.0)
        assert await limiter.acquire("acme", rate=1.0, burst=1) == 0.0
        assert server.process is not None
        server.process.send_signal(19)  # SIGSTOP: the next draw hangs
        try:
            pending = asyncio.create_task(limiter.acquire("globex", rate=1.0, burst=1))
            await asyncio.sleep(0.05)
            assert not pending.done()
            await limiter.aclose()
            with pytest.raises(asyncio.CancelledError):
                await pending
        finally:
            server.process.send_signal(18)  # SIGCONT


@pytest.mark.parametrize(
    "options", [{"batch": 1.5}, {"batch": -0.1}, {"lease_ttl": 0}, {"timeout": 0}]
)
def test_nonsense_options_are_refused(options: dict[str, float]) -> None:
    client = redis.asyncio.Redis()
    with pytest.raises(ValueError, match="must"):
        RedisRateLimiter(client, prefix="x", **options)
