"""Fixtures of the rate limiter tests: a fake clock, one Redis for the session, limiters.

``make_limiter`` builds :class:`RedisRateLimiter` instances that each have their own Redis
client -- like replicas -- and share the test's fresh key prefix, so they share buckets;
the prefix's keys are deleted when the test ends.  Tests that stop Redis start their own
server with :func:`tests.redisserver.redis_server`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
from redis.asyncio import Redis
from tests.ratelimit.helpers import FakeClock
from tests.redisserver import running_redis

from netweave.security.ratelimit import RedisRateLimiter

LimiterFactory = Callable[..., RedisRateLimiter]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Redis for the session: ``REDIS_URL``, or a redis-server of our own."""
    with running_redis(tmp_path_factory.mktemp("ratelimit-redis")) as url:
        yield url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
async def make_limiter(redis_url: str, redis_prefix: str) -> AsyncIterator[LimiterFactory]:
    """``make_limiter(url=..., client_class=..., **options)``: a limiter with its own client."""
    clients: list[Redis] = []
    limiters: list[RedisRateLimiter] = []

    def make(
        *, url: str = redis_url, client_class: type[Redis] = Redis, **options: Any
    ) -> RedisRateLimiter:
        client = client_class.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        clients.append(client)
        limiter = RedisRateLimiter(client, prefix=redis_prefix, **options)
        limiters.append(limiter)
        return limiter

    yield make
    for limiter in limiters:
        await limiter.aclose()
    for client in clients:
        await client.aclose()
