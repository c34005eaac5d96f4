"""A notification receiver for the benchmarks: ``python bench/receiver_server.py PORT``.

A minimal raw ASGI app under uvicorn (one worker, uvloop, httptools, no access log) on
127.0.0.1:PORT.  ``GET`` answers 204 (the gateway's callback check), ``POST`` reads the
whole body and answers 204, and for every POST one line ``"<time.time()> <path>\\n"`` is
written to stdout at once, unbuffered, when the body has arrived: the benchmark reads the
lines to learn when each notification got there.  Anything else answers 405.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_NO_CONTENT: Message = {"type": "http.response.start", "status": 204, "headers": []}
_NOT_ALLOWED: Message = {
    "type": "http.response.start",
    "status": 405,
    "headers": [(b"allow", b"GET, POST"), (b"content-length", b"0")],
}
_EMPTY: Message = {"type": "http.response.body", "body": b""}
_STDOUT = sys.stdout.fileno()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    method = scope["method"]
    if method == "POST":
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        os.write(_STDOUT, f"{time.time()!r} {scope['path']}\n".encode())
        await send(_NO_CONTENT)
    elif method in ("GET", "HEAD"):
        await send(_NO_CONTENT)
    else:
        await send(_NOT_ALLOWED)
    await send(_EMPTY)


def main() -> None:
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
