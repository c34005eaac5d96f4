"""Fixtures of the observability tests: one real Redis for the session, a key prefix per test.

Same pattern as ``tests/store/conftest.py``: ``REDIS_URL`` or a ``redis-server`` of our
own on loopback; each test's keys live under a fresh prefix and are deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from tests.redisserver import running_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _delete_prefix(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    _delete_prefix(redis_url, prefix)


@pytest.fixture(scope="module")
def module_redis_prefix(redis_url: str) -> Iterator[str]:
    """As ``redis_prefix``, for a gateway shared by the tests of a module."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    _delete_prefix(redis_url, prefix)
