"""One pooled HTTP client per callback origin.

httpcore's connection pool examines every pooled connection on each request and each
response close, so its cost grows with the pool.  Deliveries fan out to many
subscribers; one client per origin (scheme, host, port) keeps each pool as small as the
deliveries in flight to that origin, while still reusing keep-alive connections.  The
clients are kept for the ``max_origins`` most recently used origins.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

__all__ = ["OriginClients"]


class OriginClients:
    def __init__(self, factory: Callable[[], httpx.AsyncClient], *, max_origins: int = 512) -> None:
        self._factory = factory
        self._max_origins = max_origins
        self._clients: OrderedDict[tuple[str, str, int | None], httpx.AsyncClient] = OrderedDict()
        self._retired: list[httpx.AsyncClient] = []

    def client_for(self, url: str) -> httpx.AsyncClient:
        parts = urlsplit(url)
        key = (parts.scheme, (parts.hostname or "").lower(), parts.port)
        client = self._clients.get(key)
        if client is None:
            client = self._factory()
            self._clients[key] = client
            if len(self._clients) > self._max_origins:
                _, oldest = self._clients.popitem(last=False)
                self._retired.append(oldest)  # closed at the end: it may be in use now
        else:
            self._clients.move_to_end(key)
        return client

    async def aclose(self) -> None:
        for client in [*self._clients.values(), *self._retired]:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()
