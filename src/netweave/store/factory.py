"""The store the settings select: Redis when ``NETWEAVE_REDIS_URL`` is set, else memory."""

from __future__ import annotations

from netweave.config import Settings
from netweave.store.base import Store


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
