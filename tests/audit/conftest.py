"""Fixtures of the audit tests: one Redis for the session, audit logs of either kind.

``audit_log`` is parametrized over ``memory`` and ``redis`` (a real redis-server on
loopback, via :mod:`tests.redisserver`), so every test using it is a contract test of both
:class:`InMemoryAuditLog` and :class:`RedisAuditLog`.  Each Redis test has its own key
prefix, whose keys are deleted afterwards.  ``clock`` is a fake epoch clock for retention.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.asyncio import Redis
from tests.audit.records import BASE, FakeClock
from tests.redisserver import running_redis

from netweave.security.audit import AuditLog
from netweave.store.audit import InMemoryAuditLog, RedisAuditLog


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_redis(tmp_path_factory.mktemp("audit-redis")) as url:
        yield url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, socket_timeout=5.0)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(BASE)


@pytest.fixture(params=["memory", "redis"])
def audit_log(request: pytest.FixtureRequest) -> AuditLog:
    if request.param == "memory":
        return InMemoryAuditLog()
    client: Redis = request.getfixturevalue("redis_client")
    prefix: str = request.getfixturevalue("redis_prefix")
    return RedisAuditLog(client, prefix=prefix)
