"""Where the alarm service keeps its state: alarm records, alarm subscriptions, its configuration.

Two implementations with one contract: :class:`InMemoryAlarmStore` (one process) and
:class:`RedisAlarmStore` (shared by replicas, surviving restarts).  Every change that
could race between replicas is a compare-and-set:

* :meth:`~AlarmStore.create_alarm` writes a record only if neither its id nor its source
  key (an active alarm of the same key) exists, so two replicas raising the same alarm
  cannot both succeed -- and only the one that succeeded notifies;
* :meth:`~AlarmStore.update_alarm` writes only over the revision the caller read, so a
  change, a clear and an acknowledgement never overwrite each other;
* :meth:`~AlarmStore.put_configuration` writes over a given revision of the configuration.

Active alarms are indexed by their source key (``AlarmSignal.key``); a cleared one leaves
the index, and its key's clear time is remembered (so a late or replayed raise of an
occurrence already cleared is recognised).  Cleared records and those marks are dropped by
:meth:`~AlarmStore.purge_cleared`.

Redis layout (prefix ``netweave``)::

    netweave:alarms:record                  hash    alarm id -> stored alarm (JSON)
    netweave:alarms:revision                hash    alarm id -> revision
    netweave:alarms:active                  hash    source key -> alarm id (active alarms)
    netweave:alarms:cleared                 zset    alarm id, scored by its clear time
    netweave:alarms:cleared-key             zset    source key, scored by its latest clear
    netweave:alarms:subscription            hash    subscription id -> record (JSON)
    netweave:alarms:subscription:unique     hash    digest of tenant+callback+filter -> id
    netweave:alarms:subscription:digest     hash    subscription id -> that digest
    netweave:alarms:subscription:generation string  INCR on every add and remove
    netweave:alarms:config                  string  the configuration (JSON)
    netweave:alarms:config:revision         string  its revision
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from netweave.errors import ConflictError
from netweave.models.alarms import AlarmEventRecord
from netweave.store.redis import _guarded

__all__ = [
    "AlarmStore",
    "AlarmSubscriptionRecord",
    "InMemoryAlarmStore",
    "RedisAlarmStore",
    "StoredAlarm",
    "StoredConfiguration",
    "next_revision",
]


@dataclass(frozen=True, slots=True)
class StoredAlarm:
    """An alarm record with what the gateway needs to know about it beyond the wire."""

    record: AlarmEventRecord
    key: str  #: the source's key of the alarm instance
    definition_key: str
    definition_name: str  #: the alarm's name (metrics label)
    clearing_type: str  #: AUTOMATIC or MANUAL, from the dictionary when it was raised
    resource_pool_id: str | None  #: the resource's pool when raised (tenant visibility)
    raised_at: float  #: epoch seconds
    cleared_at: float | None = None
    revision: int = 1

    @property
    def alarm_id(self) -> str:
        return self.record.alarm_event_record_id

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    @property
    def severity(self) -> int:
        return int(self.record.perceived_severity)

    def wire(self) -> dict[str, Any]:
        return self.record.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> bytes:
        data = {
            "record": self.wire(),
            "key": self.key,
            "definition_key": self.definition_key,
            "definition_name": self.definition_name,
            "clearing_type": self.clearing_type,
            "resource_pool_id": self.resource_pool_id,
            "raised_at": self.raised_at,
            "cleared_at": self.cleared_at,
            "revision": self.revision,
        }
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> StoredAlarm:
        data = orjson.loads(raw)
        record = AlarmEventRecord.model_validate(data.pop("record"))
        return cls(record=record, **data)


@dataclass(frozen=True, slots=True)
class AlarmSubscriptionRecord:
    """An alarm subscription as stored."""

    subscription_id: str
    callback: str
    consumer_subscription_id: str | None = None
    filter: str | None = None
    created_at: float = 0.0
    #: the tenant that created it (None: a platform principal)
    tenant: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> AlarmSubscriptionRecord:
        return cls(**orjson.loads(raw))

    @property
    def digest(self) -> str:
        """What makes a subscription unique: its tenant, callback and filter."""
        unique = [self.tenant, self.callback, self.filter or None]
        return hashlib.sha256(orjson.dumps(unique)).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredConfiguration:
    """The configuration's wire form and its revision (0: never written)."""

    data: dict[str, Any]
    revision: int


class AlarmStore(Protocol):
    # -- alarm records -----------------------------------------------------------------
    async def get_alarm(self, alarm_id: str) -> StoredAlarm | None: ...

    async def list_alarms(self) -> list[StoredAlarm]:
        """Every record kept, active and cleared."""

    async def active_alarms(self) -> dict[str, StoredAlarm]:
        """The active alarms by source key."""

    async def active_alarm(self, key: str) -> StoredAlarm | None:
        """The active alarm of source key ``key``, if any."""

    async def create_alarm(self, alarm: StoredAlarm) -> bool:
        """Store a new active alarm; False (nothing written) when its id exists or an
        active alarm of its key does."""

    async def update_alarm(self, alarm: StoredAlarm, *, expected_revision: int) -> bool:
        """Overwrite the record if its stored revision is ``expected_revision`` (the
        caller gives ``alarm.revision`` the next one); False when it is not (or the record
        is gone).  A cleared alarm leaves the active index and marks its key's clear."""

    async def last_cleared(self, key: str) -> float | None:
        """When an alarm of ``key`` was last cleared (while that is remembered)."""

    async def purge_cleared(self, before: float) -> int:
        """Drop the alarms cleared before ``before`` (epoch s); how many were dropped."""

    # -- alarm subscriptions -----------------------------------------------------------
    async def add_subscription(self, record: AlarmSubscriptionRecord) -> None:
        """Raises :class:`ConflictError` when one of the same tenant, callback and filter
        exists (atomically)."""

    async def get_subscription(self, subscription_id: str) -> AlarmSubscriptionRecord | None: ...

    async def list_subscriptions(self) -> list[AlarmSubscriptionRecord]:
        """Every subscription, oldest first."""

    async def remove_subscription(self, subscription_id: str) -> bool: ...

    async def subscriptions_generation(self) -> int:
        """Changes whenever a subscription is added or removed anywhere."""

    # -- configuration -----------------------------------------------------------------
    async def get_configuration(self) -> StoredConfiguration:
        """The stored configuration; ``data`` is empty and ``revision`` 0 when never set."""

    async def put_configuration(self, data: dict[str, Any], *, expected_revision: int) -> int:
        """Write it over ``expected_revision``; the new revision, or 0 when the stored
        revision is another."""


# -- memory ------------------------------------------------------------------------------


class InMemoryAlarmStore:
    """The alarm store of one process; nothing survives a restart."""

    def __init__(self) -> None:
        self._alarms: dict[str, StoredAlarm] = {}
        self._active: dict[str, str] = {}
        self._cleared_keys: dict[str, float] = {}
        self._subscriptions: dict[str, AlarmSubscriptionRecord] = {}
        self._unique: dict[str, str] = {}
        self._generation = 0
        self._configuration = StoredConfiguration({}, 0)

    async def get_alarm(self, alarm_id: str) -> StoredAlarm | None:
        return self._alarms.get(alarm_id)

    async def list_alarms(self) -> list[StoredAlarm]:
        return list(self._alarms.values())

    async def active_alarms(self) -> dict[str, StoredAlarm]:
        return {key: self._alarms[alarm_id] for key, alarm_id in self._active.items()}

    async def active_alarm(self, key: str) -> StoredAlarm | None:
        alarm_id = self._active.get(key)
        return None if alarm_id is None else self._alarms.get(alarm_id)

    async def create_alarm(self, alarm: StoredAlarm) -> bool:
        if alarm.alarm_id in self._alarms or alarm.key in self._active:
            return False
        self._alarms[alarm.alarm_id] = alarm
        self._active[alarm.key] = alarm.alarm_id
        return True

    async def update_alarm(self, alarm: StoredAlarm, *, expected_revision: int) -> bool:
        current = self._alarms.get(alarm.alarm_id)
        if current is None or current.revision != expected_revision:
            return False
        self._alarms[alarm.alarm_id] = alarm
        if alarm.cleared_at is not None:
            if self._active.get(alarm.key) == alarm.alarm_id:
                del self._active[alarm.key]
            latest = self._cleared_keys.get(alarm.key, alarm.cleared_at)
            self._cleared_keys[alarm.key] = max(latest, alarm.cleared_at)
        return True

    async def last_cleared(self, key: str) -> float | None:
        return self._cleared_keys.get(key)

    async def purge_cleared(self, before: float) -> int:
        gone = [
            alarm_id
            for alarm_id, alarm in self._alarms.items()
            if alarm.cleared_at is not None and alarm.cleared_at < before
        ]
        for alarm_id in gone:
            del self._alarms[alarm_id]
        self._cleared_keys = {k: at for k, at in self._cleared_keys.items() if at >= before}
        return len(gone)

    async def add_subscription(self, record: AlarmSubscriptionRecord) -> None:
        if record.subscription_id in self._subscriptions:
            raise ConflictError(f"alarm subscription {record.subscription_id} exists")
        owner = self._unique.get(record.digest)
        if owner is not None:
            raise ConflictError(f"alarm subscription {owner} has the same callback and filter")
        self._subscriptions[record.subscription_id] = record
        self._unique[record.digest] = record.subscription_id
        self._generation += 1

    async def get_subscription(self, subscription_id: str) -> AlarmSubscriptionRecord | None:
        return self._subscriptions.get(subscription_id)

    def has_subscription(self, subscription_id: str) -> bool:
        """Synchronous: the in-memory outbox asks it when replaying a dead letter."""
        return subscription_id in self._subscriptions

    async def list_subscriptions(self) -> list[AlarmSubscriptionRecord]:
        return sorted(self._subscriptions.values(), key=lambda record: record.created_at)

    async def remove_subscription(self, subscription_id: str) -> bool:
        record = self._subscriptions.pop(subscription_id, None)
        if record is None:
            return False
        if self._unique.get(record.digest) == subscription_id:
            del self._unique[record.digest]
        self._generation += 1
        return True

    async def subscriptions_generation(self) -> int:
        return self._generation

    async def get_configuration(self) -> StoredConfiguration:
        return self._configuration

    async def put_configuration(self, data: dict[str, Any], *, expected_revision: int) -> int:
        if self._configuration.revision != expected_revision:
            return 0
        self._configuration = StoredConfiguration(dict(data), expected_revision + 1)
        return self._configuration.revision


# -- Redis -------------------------------------------------------------------------------

_CREATE = """
-- KEYS: record, revision, active; ARGV: id, key, stored, revision
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

_UPDATE = """
-- KEYS: record, revision, active, cleared, cleared-key
-- ARGV: id, key, stored, expected revision, new revision, cleared at ('' while active)
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current or current ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
if ARGV[6] ~= '' then
  if redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[3], ARGV[2]) end
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
  redis.call('ZADD', KEYS[5], 'GT', ARGV[6], ARGV[2])
end
return 1
"""

_ACTIVE = """
-- KEYS: active, record; returns key, stored, key, stored, ...
local found = {}
local pairs_ = redis.call('HGETALL', KEYS[1])
for i = 1, #pairs_, 2 do
  local stored = redis.call('HGET', KEYS[2], pairs_[i + 1])
  if stored then
    found[#found + 1] = pairs_[i]
    found[#found + 1] = stored
  end
end
return found
"""

_ACTIVE_ONE = """
-- KEYS: active, record; ARGV: key
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[2], id)
"""

_PURGE = """
-- KEYS: record, revision, cleared, cleared-key; ARGV: before, limit
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(gone) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[1])
return #gone
"""

_ADD_SUBSCRIPTION = """
-- KEYS: subscription, unique, digest, generation; ARGV: id, record, digest
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {2} end
local owner = redis.call('HGET', KEYS[2], ARGV[3])
if owner then return {0, owner} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[4])
return {1}
"""

_REMOVE_SUBSCRIPTION = """
-- KEYS: subscription, unique, digest, generation; ARGV: id
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local digest = redis.call('HGET', KEYS[3], ARGV[1])
if digest and redis.call('HGET', KEYS[2], digest) == ARGV[1] then
  redis.call('HDEL', KEYS[2], digest)
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('INCR', KEYS[4])
return 1
"""

_PUT_CONFIGURATION = """
-- KEYS: config, revision; ARGV: data, expected revision
local current = redis.call('GET', KEYS[2]) or '0'
if current ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return redis.call('INCR', KEYS[2])
"""

#: cleared records dropped per purge script call
_PURGE_CHUNK = 500


class RedisAlarmStore:
    """The alarm store shared by replicas, in the gateway's Redis (see the module docstring).

    ``client`` belongs to the caller (the gateway's :class:`~netweave.store.redis.RedisStore`),
    which closes it.
    """

    def __init__(self, client: Redis, *, prefix: str) -> None:
        if not prefix or any(c.isspace() for c in prefix):
            raise ValueError(f"invalid key prefix {prefix!r}")
        self._redis = client
        base = f"{prefix}:alarms"
        self._record = f"{base}:record"
        self._revision = f"{base}:revision"
        self._active = f"{base}:active"
        self._cleared = f"{base}:cleared"
        self._cleared_key = f"{base}:cleared-key"
        self._subscription = f"{base}:subscription"
        self._unique = f"{base}:subscription:unique"
        self._digest = f"{base}:subscription:digest"
        self._generation = f"{base}:subscription:generation"
        self._config = f"{base}:config"
        self._config_revision = f"{base}:config:revision"
        script = client.register_script
        self._create = script(_CREATE)
        self._update = script(_UPDATE)
        self._active_script = script(_ACTIVE)
        self._active_one = script(_ACTIVE_ONE)
        self._purge = script(_PURGE)
        self._add_subscription = script(_ADD_SUBSCRIPTION)
        self._remove_subscription = script(_REMOVE_SUBSCRIPTION)
        self._put_configuration = script(_PUT_CONFIGURATION)

    @_guarded
    async def get_alarm(self, alarm_id: str) -> StoredAlarm | None:
        raw = await self._redis.hget(self._record, alarm_id)
        return None if raw is None else StoredAlarm.from_json(raw)

    @_guarded
    async def list_alarms(self) -> list[StoredAlarm]:
        raw: dict[Any, Any] = await self._redis.hgetall(self._record)
        return [StoredAlarm.from_json(value) for value in raw.values()]

    @_guarded
    async def active_alarms(self) -> dict[str, StoredAlarm]:
        flat: Sequence[bytes] = await self._active_script(keys=[self._active, self._record])
        return {
            key.decode(): StoredAlarm.from_json(stored)
            for key, stored in zip(flat[::2], flat[1::2], strict=True)
        }

    @_guarded
    async def active_alarm(self, key: str) -> StoredAlarm | None:
        raw = await self._active_one(keys=[self._active, self._record], args=[key])
        return None if raw is None else StoredAlarm.from_json(raw)

    @_guarded
    async def create_alarm(self, alarm: StoredAlarm) -> bool:
        created = await self._create(
            keys=[self._record, self._revision, self._active],
            args=[alarm.alarm_id, alarm.key, alarm.to_json(), alarm.revision],
        )
        return bool(created)

    @_guarded
    async def update_alarm(self, alarm: StoredAlarm, *, expected_revision: int) -> bool:
        cleared = "" if alarm.cleared_at is None else repr(alarm.cleared_at)
        updated = await self._update(
            keys=[self._record, self._revision, self._active, self._cleared, self._cleared_key],
            args=[
                alarm.alarm_id,
                alarm.key,
                alarm.to_json(),
                expected_revision,
                alarm.revision,
                cleared,
            ],
        )
        return bool(updated)

    @_guarded
    async def last_cleared(self, key: str) -> float | None:
        score = await self._redis.zscore(self._cleared_key, key)
        return None if score is None else float(score)

    @_guarded
    async def purge_cleared(self, before: float) -> int:
        total = 0
        while True:
            dropped = int(
                await self._purge(
                    keys=[self._record, self._revision, self._cleared, self._cleared_key],
                    args=[repr(before), _PURGE_CHUNK],
                )
            )
            total += dropped
            if dropped < _PURGE_CHUNK:
                return total

    @_guarded
    async def add_subscription(self, record: AlarmSubscriptionRecord) -> None:
        reply = await self._add_subscription(
            keys=[self._subscription, self._unique, self._digest, self._generation],
            args=[record.subscription_id, record.to_json(), record.digest],
        )
        status = int(reply[0])
        if status == 2:
            raise ConflictError(f"alarm subscription {record.subscription_id} exists")
        if status == 0:
            owner = reply[1].decode()
            raise ConflictError(f"alarm subscription {owner} has the same callback and filter")

    @_guarded
    async def get_subscription(self, subscription_id: str) -> AlarmSubscriptionRecord | None:
        raw = await self._redis.hget(self._subscription, subscription_id)
        return None if raw is None else AlarmSubscriptionRecord.from_json(raw)

    @_guarded
    async def list_subscriptions(self) -> list[AlarmSubscriptionRecord]:
        raw: dict[Any, Any] = await self._redis.hgetall(self._subscription)
        records = [AlarmSubscriptionRecord.from_json(value) for value in raw.values()]
        return sorted(records, key=lambda record: (record.created_at, record.subscription_id))

    @_guarded
    async def remove_subscription(self, subscription_id: str) -> bool:
        removed = await self._remove_subscription(
            keys=[self._subscription, self._unique, self._digest, self._generation],
            args=[subscription_id],
        )
        return bool(removed)

    @_guarded
    async def subscriptions_generation(self) -> int:
        return int(await self._redis.get(self._generation) or 0)

    @_guarded
    async def get_configuration(self) -> StoredConfiguration:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._config)
            pipe.get(self._config_revision)
            raw, revision = await pipe.execute()
        if raw is None:
            return StoredConfiguration({}, int(revision or 0))
        return StoredConfiguration(orjson.loads(raw), int(revision or 0))

    @_guarded
    async def put_configuration(self, data: dict[str, Any], *, expected_revision: int) -> int:
        revision = await self._put_configuration(
            keys=[self._config, self._config_revision],
            args=[orjson.dumps(data), str(expected_revision)],
        )
        return int(revision)


def next_revision(alarm: StoredAlarm, **changes: Any) -> StoredAlarm:
    """``alarm`` with ``changes`` and the revision after its own."""
    return replace(alarm, revision=alarm.revision + 1, **changes)
