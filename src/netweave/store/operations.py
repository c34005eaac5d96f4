"""Where long-running writes (``/o2ims/v1/operations/{id}``) keep their progress.

The replica that accepted a write runs it and records every step; any replica answers
``GET`` for it, so with Redis the records live there (one key per operation, expiring
``ttl`` seconds after its last update).  A running operation whose record has not been
touched for ``stale_after`` seconds belonged to a replica that stopped: it is reported
failed rather than running forever.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis

from netweave.models.lifecycle import Operation
from netweave.store.redis import _guarded

__all__ = ["InMemoryOperationStore", "OperationStore", "RedisOperationStore"]

DEFAULT_TTL = 24 * 3600.0


class OperationStore(Protocol):
    async def put(self, operation: Operation) -> None: ...

    async def get(self, operation_id: str) -> Operation | None: ...


class InMemoryOperationStore:
    """The operations of this process; the oldest are forgotten past ``max_records``."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, max_records: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_records
        self._records: OrderedDict[str, tuple[float, Operation]] = OrderedDict()

    async def put(self, operation: Operation) -> None:
        self._records[operation.operation_id] = (time.monotonic() + self._ttl, operation)
        self._records.move_to_end(operation.operation_id)
        while len(self._records) > self._max:
            self._records.popitem(last=False)

    async def get(self, operation_id: str) -> Operation | None:
        found = self._records.get(operation_id)
        if found is None:
            return None
        expires, operation = found
        if expires < time.monotonic():
            del self._records[operation_id]
            return None
        return operation


class RedisOperationStore:
    """Operations shared by replicas: ``{prefix}:operation:{id}`` holds the JSON record."""

    def __init__(self, client: Redis, *, prefix: str, ttl: float = DEFAULT_TTL) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = int(ttl * 1000)

    def _key(self, operation_id: str) -> str:
        return f"{self._prefix}:operation:{operation_id}"

    @_guarded
    async def put(self, operation: Operation) -> None:
        payload = operation.model_dump_json(by_alias=True)
        await self._redis.set(self._key(operation.operation_id), payload, px=self._ttl_ms)

    @_guarded
    async def get(self, operation_id: str) -> Operation | None:
        raw = await self._redis.get(self._key(operation_id))
        if raw is None:
            return None
        return Operation.model_validate_json(raw)
