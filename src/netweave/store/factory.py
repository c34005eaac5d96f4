"""The store the settings select: Redis when ``NETWEAVE_REDIS_URL`` is set, else memory."""

from __future__ import annotations

from netweave.config import Settings
from netweave.store.alarms import AlarmStore
from netweave.store.base import Store
from netweave.store.operations import OperationStore


def build_store(settings: Settings) -> Store:
    if settings.redis_url is None:
        from netweave.store.memory import InMemoryStore

        return InMemoryStore(visibility_timeout=settings.delivery_visibility_timeout)
    from netweave.store.redis import RedisStore

    return RedisStore.from_url(
        settings.redis_url.get_secret_value(),
        prefix=settings.store_prefix,
        visibility_timeout=settings.delivery_visibility_timeout,
    )


def build_operation_store(store: Store, settings: Settings) -> OperationStore:
    """Operations next to the store: in Redis when the store is, else in the process."""
    from netweave.store.operations import InMemoryOperationStore, RedisOperationStore

    client = getattr(store, "client", None)
    if client is not None:
        return RedisOperationStore(client, prefix=settings.store_prefix)
    return InMemoryOperationStore()


def build_alarm_store(store: Store, settings: Settings) -> AlarmStore:
    """Alarm records, alarm subscriptions and their configuration next to the store: in
    Redis when the store is (surviving restarts, shared by replicas), else in the process."""
    from netweave.store.alarms import InMemoryAlarmStore, RedisAlarmStore

    client = getattr(store, "client", None)
    if client is not None:
        return RedisAlarmStore(client, prefix=settings.store_prefix)
    return InMemoryAlarmStore()
