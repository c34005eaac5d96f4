"""The raw-ASGI baseline: the same bytes as the gateway, with no framework at all.

``make_raw_app(routes)`` answers ``GET <path>`` with the bytes recorded from the gateway
for that path (query string included) and 404 otherwise.  Served by the same uvicorn
configuration as the gateway, it measures what the server and the loopback cost, so
the gateway's figure can be quoted as a ratio of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Scope = dict[str, Any]


def make_raw_app(routes: Mapping[str, bytes]) -> Any:
    table = dict(routes)
    json_headers = [(b"content-type", b"application/json")]

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        key = scope["path"]
        if scope["query_string"]:
            key += "?" + scope["query_string"].decode("latin-1")
        body = table.get(key)
        status = 200 if body is not None else 404
        await send({"type": "http.response.start", "status": status, "headers": json_headers})
        await send({"type": "http.response.body", "body": body or b""})

    return app
