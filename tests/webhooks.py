"""Real webhook receivers for the tests: an ASGI app under uvicorn on loopback.

The receiver records every POST (path, headers, body, arrival time) and answers each
path from a script (``Reply(503)``, ``Reply(204, delay=2)``, ...); a GET answers 204 by
default, as an O2-IMS callback check expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.servers import free_port


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``status`` after ``delay`` seconds, with ``headers``."""

    status: int = 204
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.time() when the whole body had arrived
    status: int  # what the receiver answered

    @property
    def notification_id(self) -> str:
        return self.headers["x-netweave-notification-id"]


@dataclass
class Receiver:
    """An ASGI app recording every POST and answering each path from its script."""

    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _scripts: dict[str, deque[Reply]] = field(default_factory=dict)
    _then: dict[str, Reply] = field(default_factory=dict)
    _received: list[Received] = field(default_factory=list)

    def script(self, path: str, *replies: Reply, then: Reply | None = None) -> str:
        """Answer POSTs to ``path`` with ``replies`` in turn, then ``then`` (204);
        returns the absolute URL of ``path``."""
        with self._lock:
            self._scripts[path] = deque(replies)
            self._then[path] = then or Reply()
        return self.base_url + path

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self._received if r.path == path]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        path = scope["path"]
        with self._lock:
            queue = self._scripts.get(path)
            reply = queue.popleft() if queue else self._then.get(path, Reply(404))
            if scope["method"] == "POST":
                self._received.append(
                    Received(
                        path=path,
                        headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
                        body=b"".join(chunks),
                        at=time.time(),
                        status=reply.status,
                    )
                )
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A real HTTP receiver (uvicorn in a thread) on a free loopback port."""
    app = Receiver()
    port = free_port()
    app.base_url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"receiver-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.01)
    try:
        yield app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
