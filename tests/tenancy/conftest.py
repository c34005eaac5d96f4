"""Fixtures of the tenancy tests: one Redis for the session, tenancy stores of either kind.

``make_store`` is parametrized over ``memory`` and ``redis``, so every test using it (or
``store``) runs against both: that is the contract suite.  Redis stores of one test share a
fresh key prefix but each has its own client (connection pool), like replicas; the memory
"replicas" of one test are the same store.  Keys are deleted when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
import redis.asyncio
from tests.redisserver import running_redis

from netweave.security.tenancy import TenancyStore
from netweave.store.tenants import InMemoryTenancyStore, RedisTenancyStore

StoreFactory = Callable[[], TenancyStore]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Redis for the session: ``REDIS_URL``, or a redis-server of our own."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
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


@pytest.fixture(params=["memory", "redis"], ids=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Makes the stores of one deployment of this run's kind (replicas share the data)."""
    if request.param == "memory":
        shared = InMemoryTenancyStore()
        yield lambda: shared
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    clients: list[redis.asyncio.Redis] = []

    def make() -> TenancyStore:
        client = redis.asyncio.Redis.from_url(url)
        clients.append(client)
        return RedisTenancyStore(client, prefix=prefix)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def store(make_store: StoreFactory) -> TenancyStore:
    return make_store()
