"""Raw JSON requests to the API server for the backend's writes, with errors translated.

Writes go through the same lightkube-configured httpx client as the watches, on plain
JSON (no typed models: the objects involved include custom resources).  Every failure
becomes an :mod:`netweave.errors` error the gateway can report as is:

=================================  ==============================================
API server answer                  error
=================================  ==============================================
no answer (connection, timeout)    ``BackendUnavailableError`` (503)
404                                ``NotFoundError`` naming the object
409                                ``ConflictError`` with the server's message
400 / 422 (the object is invalid)  ``InvalidRequestError`` with the server's message
403                                ``BackendError`` naming the missing permission
429, 5xx, anything else            ``BackendError`` with the server's message
=================================  ==============================================

A caller that handles a status itself (an eviction refused with 429, an object already
gone) lists it in ``accept`` and gets the :class:`Reply` instead.

With tracing on, each request made under a span (an API request's, a batch's) is a
client span ``kubernetes METHOD`` with the API path, and carries its ``traceparent``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx2 as httpx
import orjson

from netweave.errors import (
    BackendError,
    BackendUnavailableError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    O2Error,
)
from netweave.observability import tracing

__all__ = [
    "CAPI",
    "MERGE_PATCH",
    "NODES",
    "RESOURCE_POOLS",
    "RESOURCE_POOL_GROUP_VERSION",
    "KubeWriter",
    "Reply",
    "machine_path",
    "machineset_path",
    "resource_pool_path",
]

NODES: Final = "/api/v1/nodes"
CAPI: Final = "/apis/cluster.x-k8s.io/v1beta1"
RESOURCE_POOL_GROUP_VERSION: Final = "/apis/o2ims.oran.org/v1alpha1"
RESOURCE_POOLS: Final = f"{RESOURCE_POOL_GROUP_VERSION}/resourcepools"
MERGE_PATCH: Final = "application/merge-patch+json"
_MESSAGE_LIMIT: Final = 300
_PAGE: Final = 500


def machineset_path(namespace: str, name: str = "") -> str:
    base = f"{CAPI}/namespaces/{namespace}/machinesets"
    return f"{base}/{name}" if name else base


def machine_path(namespace: str, name: str) -> str:
    return f"{CAPI}/namespaces/{namespace}/machines/{name}"


def resource_pool_path(name: str) -> str:
    return f"{RESOURCE_POOLS}/{name}"


@dataclass(frozen=True, slots=True)
class Reply:
    """An API server answer: its status and JSON body (``{}`` when it has none)."""

    status: int
    body: dict[str, Any]

    @property
    def message(self) -> str:
        """The ``Status`` message of an error answer."""
        return str(self.body.get("message", ""))[:_MESSAGE_LIMIT]

    @property
    def causes(self) -> list[str]:
        """The messages of the ``Status`` causes (e.g. which disruption budget refused)."""
        details = self.body.get("details")
        causes = details.get("causes") if isinstance(details, Mapping) else None
        if not isinstance(causes, list):
            return []
        return [str(c.get("message", "")) for c in causes if isinstance(c, Mapping)]


class KubeWriter:
    """Sends one request and returns the answer or raises the matching O2 error."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
        content_type: str = "application/json",
        accept: Collection[int] = (),
    ) -> Reply:
        """``method path``; ``what`` names the object for error messages ("node w-1")."""
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = content_type
        attributes = {"http.request.method": method, "url.path": path}
        with tracing.child_span(f"kubernetes {method}", attributes) as current:
            tracing.inject(headers)
            try:
                response = await self._http.request(
                    method, path, content=content, params=params, headers=headers
                )
            except (httpx.HTTPError, OSError) as exc:
                failure = type(exc).__name__
                raise BackendUnavailableError(
                    f"Kubernetes API server unreachable while handling {what}: {failure}"
                ) from None
            tracing.http_status(current, response.status_code)
        reply = Reply(response.status_code, _json(response.content))
        if reply.status < 400 or reply.status in accept:
            return reply
        raise _error(reply, method, what)

    async def get(self, path: str, *, what: str, **options: Any) -> dict[str, Any]:
        return (await self.send("GET", path, what=what, **options)).body

    async def merge_patch(
        self, path: str, patch: Mapping[str, Any], *, what: str, accept: Collection[int] = ()
    ) -> Reply:
        return await self.send(
            "PATCH", path, what=what, body=patch, content_type=MERGE_PATCH, accept=accept
        )

    async def list(
        self, path: str, *, what: str, params: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a list, all pages (``params``: label or field selector)."""
        items: list[dict[str, Any]] = []
        query: dict[str, str | int] = {**(params or {}), "limit": _PAGE}
        while True:
            body = await self.get(path, what=what, params=query)
            items.extend(item for item in body.get("items") or () if isinstance(item, dict))
            cont = (body.get("metadata") or {}).get("continue")
            if not cont:
                return items
            query = {**query, "continue": cont}


def _json(content: bytes) -> dict[str, Any]:
    if not content:
        return {}
    try:
        decoded = orjson.loads(content)
    except orjson.JSONDecodeError:
        return {"message": content[:_MESSAGE_LIMIT].decode(errors="replace")}
    return decoded if isinstance(decoded, dict) else {}


_VERBS: Final = {
    "GET": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def _error(reply: Reply, method: str, what: str) -> O2Error:
    message = reply.message or f"HTTP {reply.status}"
    if reply.status == 404:
        return NotFoundError(f"{what} not found")
    if reply.status == 409:
        return ConflictError(f"{what}: {message}")
    if reply.status in (400, 422):
        return InvalidRequestError(f"{what} rejected by the Kubernetes API server: {message}")
    if reply.status == 403:
        verb = _VERBS.get(method, method.lower())
        return BackendError(
            f"the gateway's Kubernetes identity may not {verb} {what} "
            f"(see deploy/rbac/clusterrole.yaml): {message}"
        )
    return BackendError(f"{what}: Kubernetes API server answered {reply.status}: {message}")
