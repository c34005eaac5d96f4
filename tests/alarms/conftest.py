"""Fixtures of the alarm tests: one Redis for the session, stores of either kind.

``make_stores`` is parametrized over ``memory`` and ``redis``: every test using it (or
``stores``) runs against both, which makes the store tests a contract suite.  Redis stores
made in one test share a fresh key prefix but each has its own client, like replicas (or a
gateway before and after a restart); the memory "replicas" of one test share the same
objects.  Keys are deleted when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
from tests.alarms.fakes import Clock
from tests.redisserver import running_redis

from netweave.store.alarms import AlarmStore, InMemoryAlarmStore, RedisAlarmStore
from netweave.store.base import Store
from netweave.store.memory import InMemoryStore
from netweave.store.redis import RedisStore

StoreFactory = Callable[[], tuple[Store, AlarmStore]]


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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"], ids=["memory", "redis"])
async def make_stores(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[StoreFactory]:
    """Makes (gateway store, alarm store) pairs of this run's kind, on the fake clock."""
    created: list[Store] = []
    if request.param == "memory":
        shared = (InMemoryStore(clock=clock), InMemoryAlarmStore())
        created.append(shared[0])
        yield lambda: shared
    else:
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")

        def make() -> tuple[Store, AlarmStore]:
            store = RedisStore.from_url(url, prefix=prefix, clock=clock, poll_interval=0.02)
            created.append(store)
            return store, RedisAlarmStore(store.client, prefix=prefix)

        yield make
    for store in created:
        await store.aclose()


@pytest.fixture
def stores(make_stores: StoreFactory) -> tuple[Store, AlarmStore]:
    return make_stores()
