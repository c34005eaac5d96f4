"""Fixtures of the store tests: one Redis for the session, stores of either kind.

``make_store`` is parametrized over ``memory`` and ``redis``, so every test that uses it (or
``store``) runs against both implementations: that is the contract suite.  Redis stores of
one test share a fresh key prefix, so they see the same data, like replicas; the keys are
deleted when the test ends.  ``clock`` is a fake clock to inject where due times or
visibility deadlines matter; waits on real time stay short.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
from tests.redisserver import running_redis

from netweave.store.base import Store
from netweave.store.memory import InMemoryStore
from netweave.store.redis import RedisStore

StoreFactory = Callable[..., Store]


class FakeClock:
    """A clock that moves only when told to (epoch seconds)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Redis for the session: ``REDIS_URL``, or a redis-server of our own."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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
    """Makes stores of this run's kind: ``make_store(visibility_timeout=..., clock=...)``."""
    kind: str = request.param
    created: list[Store] = []
    if kind == "redis":
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")

    def make(*, visibility_timeout: float = 30.0, clock: Callable[[], float] = time.time) -> Store:
        store: Store
        if kind == "memory":
            store = InMemoryStore(visibility_timeout=visibility_timeout, clock=clock)
        else:
            store = RedisStore.from_url(
                url,
                prefix=prefix,
                visibility_timeout=visibility_timeout,
                clock=clock,
                poll_interval=0.02,
            )
        created.append(store)
        return store

    yield make
    for store in created:
        await store.aclose()


@pytest.fixture
def store(make_store: StoreFactory, clock: FakeClock) -> Store:
    """A store of this run's kind on the fake clock."""
    return make_store(clock=clock)
