"""``POST /o2ims/v1/batch``: several writes in one request, answered 207 Multi-Status.

Each operation names what it does (``create``, ``update`` or ``delete``) to which kind
(``resourcePool``, ``resource`` or ``subscription``), and becomes the request the gateway
API defines for it, sent through the whole application in turn: it is authenticated,
authorised, rate-limited and audited exactly as if the caller had sent it alone, and
answers with the same status and body.  Operations run in order; a failed one does not
stop the others.

``atomic: true`` makes the batch all-or-nothing: at the first failure the operations
already done are undone, newest first, and the rest are not attempted.  Only operations
that can be undone are accepted in an atomic batch: creates and updates of pools and
subscriptions.  Deleting a pool or a subscription, and adding or retiring a resource
(a machine provisioned, a node drained), cannot be undone, so an atomic batch holding
one is refused with 400 before anything runs.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import Field, model_validator
from starlette.responses import Response
from starlette.types import Message, Scope

from netweave.errors import InvalidRequestError
from netweave.models.common import ProblemDetails, WireModel

PREFIX = "/o2ims/v1"
MAX_OPERATIONS = 100

__all__ = ["BatchRequest", "router"]

Kind = Literal["resourcePool", "resource", "subscription"]
Op = Literal["create", "update", "delete"]

_COLLECTIONS: dict[str, str] = {
    "resourcePool": f"{PREFIX}/resourcePools",
    "resource": f"{PREFIX}/resources",
    "subscription": f"{PREFIX}/subscriptions",
}
_UPDATE_METHOD = {"resourcePool": "PATCH", "subscription": "PUT"}
_REVERSIBLE = {("create", "resourcePool"), ("update", "resourcePool")} | {
    ("create", "subscription"),
    ("update", "subscription"),
}
#: the request headers a batch passes on to its operations
_FORWARDED = frozenset({b"authorization", b"x-forwarded-client-cert", b"x-forwarded-for"})


class BatchOperation(WireModel):
    op: Op
    kind: Kind
    id: str | None = Field(default=None, min_length=1, max_length=256)
    body: dict[str, Any] | None = None
    #: deleting a pool that still has resources
    force: bool = False

    @model_validator(mode="after")
    def _shape(self) -> BatchOperation:
        if self.op == "create" and self.id is not None:
            raise ValueError("a create names no id (the gateway assigns it)")
        if self.op != "create" and self.id is None:
            raise ValueError(f"{self.op} needs the id of the {self.kind}")
        if self.op == "update" and self.kind == "resource":
            raise ValueError("resources cannot be updated; retire one and add another")
        if self.op in ("create", "update") and self.body is None and self.kind != "resource":
            raise ValueError(f"{self.op} needs a body")
        if self.force and (self.op, self.kind) != ("delete", "resourcePool"):
            raise ValueError("force applies to deleting a resource pool only")
        return self

    def request(self) -> tuple[str, str, dict[str, Any] | None]:
        """The gateway API request this operation stands for: method, path, body."""
        collection = _COLLECTIONS[self.kind]
        if self.op == "create":
            return "POST", collection, self.body if self.kind != "resource" else self.body or {}
        path = f"{collection}/{self.id}"
        if self.op == "update":
            return _UPDATE_METHOD[self.kind], path, self.body
        return "DELETE", path + ("?force=true" if self.force else ""), None


class BatchRequest(WireModel):
    atomic: bool = False
    operations: list[BatchOperation] = Field(min_length=1, max_length=MAX_OPERATIONS)


class BatchResult(WireModel):
    index: int
    op: Op
    kind: Kind
    status: int
    body: Any = None
    rolled_back: bool | None = None
    rollback_error: Any = None


class BatchResponse(WireModel):
    atomic: bool
    committed: bool
    results: list[BatchResult]


router = APIRouter(prefix=PREFIX, tags=["netweave gateway API: batch"])


@router.post(
    "/batch",
    status_code=207,
    response_model=BatchResponse,
    responses={400: {"model": ProblemDetails, "content": {"application/problem+json": {}}}},
    operation_id="gatewayBatch",
    summary="Run several pool, resource and subscription writes; 207 with one result each",
)
async def batch(request: Request, body: BatchRequest) -> Response:
    if body.atomic:
        irreversible = [
            f"operations[{index}] ({item.op} {item.kind})"
            for index, item in enumerate(body.operations)
            if (item.op, item.kind) not in _REVERSIBLE
        ]
        if irreversible:
            raise InvalidRequestError(
                "an atomic batch may hold only creates and updates of pools and subscriptions, "
                f"which can be undone; these cannot: {', '.join(irreversible)}"
            )
    runner = _Runner(request)
    results: list[BatchResult] = []
    done: list[tuple[int, BatchOperation, Any, Any]] = []  # (index, op, answer, prior state)
    committed = True
    for index, item in enumerate(body.operations):
        if body.atomic and not committed:
            results.append(
                BatchResult(
                    index=index,
                    op=item.op,
                    kind=item.kind,
                    status=424,
                    body=_problem(424, "not attempted: an earlier operation failed"),
                )
            )
            continue
        prior = await runner.prior(item) if body.atomic else None
        method, path, payload = item.request()
        status, answer = await runner.send(method, path, payload, tag=str(index))
        results.append(
            BatchResult(index=index, op=item.op, kind=item.kind, status=status, body=answer)
        )
        if status < 400:
            done.append((index, item, answer, prior))
        elif body.atomic:
            committed = False
            await _undo(runner, done, results)
    if not body.atomic:
        committed = all(result.status < 400 for result in results)
    answer = BatchResponse(atomic=body.atomic, committed=committed, results=results)
    return Response(
        content=answer.model_dump_json(by_alias=True, exclude_none=True),
        status_code=207,
        media_type="application/json",
    )


async def _undo(
    runner: _Runner,
    done: list[tuple[int, BatchOperation, Any, Any]],
    results: list[BatchResult],
) -> None:
    """Undo the operations done so far, newest first; record what happened to each."""
    for index, item, answer, prior in reversed(done):
        method, path, payload = _inverse(item, answer, prior)
        status, reply = await runner.send(method, path, payload, tag=f"{index}-undo")
        result = results[index]
        if status < 400:
            results[index] = result.model_copy(update={"rolled_back": True})
        else:
            results[index] = result.model_copy(
                update={"rolled_back": False, "rollback_error": reply}
            )


def _inverse(
    item: BatchOperation, answer: Any, prior: Any
) -> tuple[str, str, dict[str, Any] | None]:
    collection = _COLLECTIONS[item.kind]
    if item.op == "create":
        key = "resourcePoolId" if item.kind == "resourcePool" else "subscriptionId"
        path = f"{collection}/{answer[key]}"
        return "DELETE", path + ("?force=true" if item.kind == "resourcePool" else ""), None
    # an update: put back what was there
    path = f"{collection}/{item.id}"
    if item.kind == "resourcePool":
        before = prior.get("extensions") or {}
        changed = (item.body or {}).get("extensions") or {}
        restore: dict[str, Any] = {"description": prior.get("description", "")}
        extensions: dict[str, Any] = {}
        if "labels" in changed:
            extensions["labels"] = before.get("labels") or {}
        if "replicas" in changed:
            extensions["replicas"] = before.get("replicas", prior.get("_resourceCount"))
        if extensions:
            restore["extensions"] = extensions
        return "PATCH", path, restore
    return (
        "PUT",
        path,
        {
            key: prior[key]
            for key in ("callback", "filter", "consumerSubscriptionId")
            if key in prior
        },
    )


def _problem(status: int, detail: str) -> dict[str, Any]:
    return {"type": "about:blank", "title": "Failed Dependency", "status": status, "detail": detail}


class _Runner:
    """Sends requests through the whole application as the batch's caller."""

    def __init__(self, request: Request) -> None:
        self._app = request.app
        self._scope = request.scope
        self._headers = [(k, v) for k, v in request.scope["headers"] if k in _FORWARDED]
        # the batch's request id (given or assigned): its operations' ids extend it, so the
        # audit records of a batch can be told apart and tied to it
        self._request_id = str(request.scope.get("netweave.request_id", ""))
        #: the response headers of the last request sent
        self.last_headers: dict[bytes, bytes] = {}

    async def prior(self, item: BatchOperation) -> Any:
        """The current state of what an update will change (to put it back on undo)."""
        if item.op != "update":
            return None
        path = f"{_COLLECTIONS[item.kind]}/{item.id}"
        status, body = await self.send("GET", path, None, tag="")
        if status != 200:
            return None
        if item.kind == "resourcePool":
            # a pool's size is its node count when it does not record replicas itself
            status, _ = await self.send("GET", f"{path}/resources?fields=resourceId", None, tag="")
            total = self.last_headers.get(b"x-total-count")
            if status == 200 and total is not None:
                body["_resourceCount"] = int(total)
        return body

    async def send(
        self, method: str, target: str, payload: dict[str, Any] | None, *, tag: str
    ) -> tuple[int, Any]:
        path, _, query = target.partition("?")
        body = orjson.dumps(payload) if payload is not None else b""
        headers = list(self._headers)
        if payload is not None:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        if self._request_id and tag:
            headers.append((b"x-request-id", f"{self._request_id}.{tag}"[:128].encode()))
        scope: Scope = {
            "type": "http",
            "asgi": self._scope.get("asgi", {"version": "3.0"}),
            "http_version": self._scope.get("http_version", "1.1"),
            "method": method,
            "scheme": self._scope.get("scheme", "http"),
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": headers,
            "client": self._scope.get("client"),
            "server": self._scope.get("server"),
            "state": {},
            "netweave.nested": True,
        }
        for key in ("extensions", "netweave.peer", "netweave.via_proxy"):
            if key in self._scope:
                scope[key] = self._scope[key]
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.last_headers = dict(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        raw = b"".join(chunks)
        return status, orjson.loads(raw) if raw else None
