"""List-then-watch of one Kubernetes resource kind, kept up forever (a reflector).

:class:`Reflector` lists the kind (in pages), remembers every object by uid, then
watches from the list's ``resourceVersion`` with bookmarks on.  It

* applies ADDED / MODIFIED / DELETED events and reports each real change to its
  ``on_change`` callback as ``(old, new)`` raw objects (``None`` for absent);
* moves its resume point on every event and on BOOKMARK events;
* on ``410 Gone`` (the resume point expired) lists again and reports the difference
  between what it held and what the list says: objects created, changed or deleted
  while it was not watching are never lost; then calls ``on_relist`` (as after the first
  list), for consumers that resend their whole view after a gap;
* on a dropped connection, an API-server restart or a 5xx resumes from its last
  resourceVersion after an exponential backoff with jitter (never a busy loop);
* on ``403`` (missing RBAC permission) logs one clear line naming the resource and
  verb, reports itself degraded, and retries slowly; the rest of the view keeps working.

A ``selector`` (query parameters such as a ``fieldSelector``) narrows every list and
watch to part of the kind, e.g. the Warning events about nodes.

The single-stream functions (:meth:`Reflector.relist`, :meth:`Reflector.watch_once`)
are separate from the forever loop (:meth:`Reflector.run`) so tests can drive them.

With tracing on, each list is a span ("kubernetes relist") with a client span per page;
watch streams live for minutes and are not traced (the changes they carry are: the
inventory view's spans).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import orjson

from netweave.observability import tracing
from netweave.observability.logging import get_logger

__all__ = ["Backoff", "ChangeCallback", "Reflector", "ResourceGoneError", "WatchForbiddenError"]

JsonMap = dict[str, Any]
ChangeCallback = Callable[[str, "JsonMap | None", "JsonMap | None"], None]

_log = get_logger("netweave.kubernetes.watch")


class ResourceGoneError(Exception):
    """The watch resume point is older than the API server keeps (HTTP 410)."""


class WatchForbiddenError(Exception):
    """The gateway's identity may not list or watch this resource (HTTP 403)."""


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``initial`` doubling up to ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 30.0
    _current: float = 0.0

    def next(self) -> float:
        self._current = self.initial if self._current == 0 else min(self._current * 2, self.maximum)
        return self._current * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._current = 0.0


class Reflector:
    """Keeps every object of one kind (``path``, e.g. ``/api/v1/nodes``) in memory."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        path: str,
        *,
        resource: str,
        on_change: ChangeCallback,
        page_size: int = 500,
        watch_timeout: int = 300,
        backoff: Backoff | None = None,
        forbidden_retry: float = 60.0,
        selector: Mapping[str, str] | None = None,
        on_relist: Callable[[], None] | None = None,
    ) -> None:
        """``selector``: query parameters that narrow the kind on every list and watch
        (``{"fieldSelector": "type=Warning"}``); ``on_relist``: called after each list
        (the first one and every one after ``410 Gone``) has reported its difference."""
        self.http = http
        self.path = path
        self.resource = resource  # e.g. "nodes" or "machinesets.cluster.x-k8s.io", for logs
        self.on_change = on_change
        self.selector = dict(selector or {})
        self.on_relist = on_relist
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff = backoff or Backoff()
        self.forbidden_retry = forbidden_retry
        self.objects: dict[str, JsonMap] = {}
        self.resource_version: str | None = None
        self.synced = asyncio.Event()
        self.degraded: str | None = None  # why this kind is not being watched, if it is not
        self.restarts = 0  # watch streams re-opened after a failure, for metrics

    # One list, one watch stream ----------------------------------------------------------

    async def relist(self) -> None:
        """List every object (all pages), report the difference, remember the version."""
        with tracing.span("kubernetes relist", {"netweave.kubernetes.resource": self.resource}):
            await self._relist()

    async def _list_page(self, params: Mapping[str, str | int]) -> httpx.Response:
        attributes = {"http.request.method": "GET", "url.path": self.path}
        with tracing.child_span("kubernetes GET", attributes) as current:
            headers: dict[str, str] = {}
            tracing.inject(headers)
            response = await self.http.get(self.path, params=params, headers=headers or None)
            tracing.http_status(current, response.status_code)
        return response

    async def _relist(self) -> None:
        fresh: dict[str, JsonMap] = {}
        params: dict[str, str | int] = {**self.selector, "limit": self.page_size}
        version = ""
        while True:
            response = await self._list_page(params)
            _raise_for_status(response)
            body = orjson.loads(response.content)
            for item in body.get("items") or ():
                fresh[_uid(item)] = item
            metadata = body.get("metadata") or {}
            version = metadata.get("resourceVersion") or version
            cont = metadata.get("continue")
            if not cont:
                break
            params = {**self.selector, "limit": self.page_size, "continue": cont}
        held, self.objects = self.objects, fresh
        for uid, item in fresh.items():
            old = held.get(uid)
            if old is None or old.get("metadata", {}).get("resourceVersion") != item.get(
                "metadata", {}
            ).get("resourceVersion"):
                self.on_change(uid, old, item)
        for uid, old in held.items():
            if uid not in fresh:
                self.on_change(uid, old, None)
        self.resource_version = version
        self.degraded = None
        self.synced.set()
        if self.on_relist is not None:
            self.on_relist()

    async def watch_once(self) -> int:
        """Follow one watch stream from the current version until the server ends it.

        Returns how many events it carried (bookmarks included).
        """
        params: dict[str, str | int] = {
            **self.selector,
            "watch": 1,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": self.watch_timeout,
        }
        if self.resource_version:
            params["resourceVersion"] = self.resource_version
        timeout = httpx.Timeout(10.0, read=self.watch_timeout + 30.0)
        async with self.http.stream("GET", self.path, params=params, timeout=timeout) as stream:
            if stream.status_code >= 400:
                await stream.aread()
                _raise_for_status(stream)
            events = 0
            async for line in stream.aiter_lines():
                if line:
                    self._apply(orjson.loads(line))
                    events += 1
                    if events == 1:
                        self.backoff.reset()  # only a stream that carries events is healthy
        return events

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise ResourceGoneError(str(obj.get("message", "resource version too old")))
            raise httpx.HTTPError(f"watch error event: {obj.get('message', obj)}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            self.resource_version = version or self.resource_version
            return
        uid = _uid(obj)
        old = self.objects.get(uid)
        if kind == "DELETED":
            if old is not None:
                del self.objects[uid]
                self.on_change(uid, old, None)
        elif kind in ("ADDED", "MODIFIED"):
            self.objects[uid] = obj
            self.on_change(uid, old, obj)
        self.resource_version = version or self.resource_version

    # The forever loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """List, then watch forever; recover from every failure as the module docstring says."""
        need_list = True
        while True:
            try:
                if need_list:
                    await self.relist()
                    need_list = False
                opened = time.monotonic()
                if await self.watch_once() == 0 and time.monotonic() - opened < 1.0:
                    # an empty stream closed at once (a misbehaving proxy, say): never spin
                    await asyncio.sleep(self.backoff.next())
                continue  # the server closed the stream at its timeout: resume
            except asyncio.CancelledError:
                raise
            except ResourceGoneError:
                _log.info("watch resume point expired; listing again", resource=self.resource)
                need_list = True
                self.restarts += 1
                continue
            except WatchForbiddenError as exc:
                if self.degraded is None:
                    _log.error(
                        "missing RBAC permission; this kind is left out of the inventory",
                        resource=self.resource,
                        detail=str(exc),
                    )
                self.degraded = f"forbidden to list/watch {self.resource}"
                self.synced.set()  # degraded but working: do not hold the rest back
                need_list = True
                await asyncio.sleep(self.forbidden_retry)
                continue
            except (httpx.HTTPError, OSError, ValueError) as exc:
                delay = self.backoff.next()
                self.restarts += 1
                _log.warning(
                    "watch interrupted; resuming",
                    resource=self.resource,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                    retry_in=round(delay, 2),
                )
                await asyncio.sleep(delay)


def _uid(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    uid = metadata.get("uid")
    if uid:
        return str(uid)
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code == 410:
        raise ResourceGoneError("resource version too old")
    if response.status_code == 403:
        raise WatchForbiddenError(_message(response))
    if response.status_code >= 400:
        raise httpx.HTTPStatusError(
            f"HTTP {response.status_code}: {_message(response)}",
            request=response.request,
            response=response,
        )


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message", response.reason_phrase))[:300]
    return response.reason_phrase
