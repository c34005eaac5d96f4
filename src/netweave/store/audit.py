"""Audit record storage: :class:`InMemoryAuditLog` (one process) and :class:`RedisAuditLog`.

Both keep records ordered by event id, which is time order, with an index per tenant so a
tenant's query reads only its own records.  Retention is the caller's
(:class:`~netweave.security.audit.AuditTrail` calls :meth:`prune`).

Redis layout, all under ``{prefix}:audit:``::

    records         hash   event id -> record JSON
    time            zset   event id, scored by epoch milliseconds (every record)
    tenant:<id>     zset   the same, for the records of one tenant
    tenants         set    the tenants that have a ``tenant:`` index

Members with equal scores sort by member, and an event id starts with its milliseconds, so
a zset's order is the event-id order.  Appends are one MULTI; a query reads the index, then
the hash in one pipeline (a record pruned in between is skipped).
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis

from netweave.security.audit import AuditRecord
from netweave.store.redis import _guarded

__all__ = ["InMemoryAuditLog", "RedisAuditLog"]

#: records removed or read per round trip
_CHUNK = 1000

#: remove up to ARGV[2] records older than ARGV[1] ms from the overall index and the hash
_PRUNE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then
  redis.call('HDEL', KEYS[2], unpack(ids))
  redis.call('ZREM', KEYS[1], unpack(ids))
end
return #ids
"""

#: trim one tenant's index; forget the tenant once its index is empty (atomic with appends)
_PRUNE_TENANT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
end
return 0
"""


def _key(record: AuditRecord) -> str:
    return record.event_id


class InMemoryAuditLog:
    """The audit log of a single gateway process, bounded to ``max_records`` (oldest go)."""

    def __init__(self, *, max_records: int = 100_000) -> None:
        if max_records <= 0:
            raise ValueError("max_records must be positive")
        self._max = max_records
        self._all: deque[AuditRecord] = deque()
        self._tenants: dict[str, deque[AuditRecord]] = {}

    def __len__(self) -> int:
        return len(self._all)

    async def append(self, record: AuditRecord) -> None:
        _insert(self._all, record)
        if record.tenant_id is not None:
            _insert(self._tenants.setdefault(record.tenant_id, deque()), record)
        while len(self._all) > self._max:
            self._drop_oldest()

    async def query(
        self, *, tenant: str | None, since: float | None, until: float | None, limit: int
    ) -> list[AuditRecord]:
        records = self._all if tenant is None else self._tenants.get(tenant, deque())
        low = 0 if since is None else _first_at_or_after(records, since)
        high = len(records) if until is None else _first_at_or_after(records, until)
        return list(itertools.islice(records, low, min(high, low + max(limit, 0))))

    async def prune(self, before: float) -> int:
        removed = 0
        while self._all and self._all[0].millis < before * 1000:
            self._drop_oldest()
            removed += 1
        return removed

    def _drop_oldest(self) -> None:
        oldest = self._all.popleft()
        if oldest.tenant_id is None:
            return
        # the oldest record overall is also the oldest of its tenant
        own = self._tenants[oldest.tenant_id]
        own.popleft()
        if not own:
            del self._tenants[oldest.tenant_id]


def _insert(records: deque[AuditRecord], record: AuditRecord) -> None:
    """Append in event-id order; a record that lost a race to an append is slotted in."""
    if not records or records[-1].event_id <= record.event_id:
        records.append(record)
    else:
        records.insert(bisect.bisect_right(records, record.event_id, key=_key), record)


def _first_at_or_after(records: Sequence[AuditRecord], instant: float) -> int:
    return bisect.bisect_left(records, instant * 1000, key=lambda record: record.millis)


class RedisAuditLog:
    """Audit records in Redis, shared by the gateway replicas (layout in the module doc).

    ``client`` is not owned: whoever made it closes it.  Connection errors, timeouts and
    a read-only server raise :class:`~netweave.errors.BackendUnavailableError`.
    """

    def __init__(self, client: Redis, *, prefix: str) -> None:
        self._redis = client
        self._base = f"{prefix}:audit"
        self._records = f"{self._base}:records"
        self._time = f"{self._base}:time"
        self._tenant_set = f"{self._base}:tenants"
        self._prune = client.register_script(_PRUNE)
        self._prune_tenant = client.register_script(_PRUNE_TENANT)

    def _tenant(self, tenant: str) -> str:
        return f"{self._base}:tenant:{tenant}"

    @_guarded
    async def append(self, record: AuditRecord) -> None:
        score = {record.event_id: record.millis}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._records, record.event_id, record.model_dump_json(by_alias=True))
            pipe.zadd(self._time, score)
            if record.tenant_id is not None:
                pipe.zadd(self._tenant(record.tenant_id), score)
                pipe.sadd(self._tenant_set, record.tenant_id)
            await pipe.execute()

    @_guarded
    async def query(
        self, *, tenant: str | None, since: float | None, until: float | None, limit: int
    ) -> list[AuditRecord]:
        if limit <= 0:
            return []
        index = self._time if tenant is None else self._tenant(tenant)
        low: Any = "-inf" if since is None else since * 1000
        high: Any = "+inf" if until is None else f"({until * 1000!r}"
        ids = cast(
            list[bytes], await self._redis.zrangebyscore(index, low, high, start=0, num=limit)
        )
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(ids), _CHUNK):
                pipe.hmget(self._records, ids[start : start + _CHUNK])
            chunks = await pipe.execute()
        return [
            AuditRecord.model_validate_json(raw)
            for chunk in chunks
            for raw in chunk
            if raw is not None  # pruned since the index was read
        ]

    @_guarded
    async def prune(self, before: float) -> int:
        cutoff = repr(before * 1000)
        removed = 0
        while True:
            count = int(await self._prune(keys=[self._time, self._records], args=[cutoff, _CHUNK]))
            removed += count
            if count < _CHUNK:
                break
        for tenant in await self._redis.smembers(self._tenant_set):
            name = tenant.decode() if isinstance(tenant, bytes) else str(tenant)
            await self._prune_tenant(
                keys=[self._tenant(name), self._tenant_set], args=[cutoff, name]
            )
        return removed
