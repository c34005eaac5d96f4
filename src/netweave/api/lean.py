"""A lean ASGI router for the read-hot O2-IMS surfaces.

FastAPI's per-request machinery (dependency solving, request objects, response
validation) costs several times more than a cached inventory read itself; measured on
this project's benchmark it capped the pool list at a quarter of what the server can
carry.  The standard read surfaces are therefore routed here: a table of
:class:`LeanRoute` entries, matched by a dict lookup (static paths) or one regex per
parameterised path, whose handlers answer pre-rendered bytes.  Everything else (docs,
operations, writes) falls through to the FastAPI app behind it.

The routes still appear in ``/openapi.json``: :func:`openapi_paths` renders them from
the same table, with the wire models' JSON schemas.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.types import ASGIApp, Receive, Scope, Send

from netweave.api.problems import PROBLEM_JSON, problem_body
from netweave.errors import MethodNotAllowedError, O2Error
from netweave.models.common import ProblemDetails

__all__ = [
    "LeanHandler",
    "LeanRequest",
    "LeanResponse",
    "LeanRoute",
    "LeanRouter",
    "openapi_paths",
]

QueryKind = Literal["list", "fields", "none"]


@dataclass(frozen=True, slots=True)
class LeanResponse:
    body: bytes
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    media_type: str = "application/json"


@dataclass(slots=True)
class LeanRequest:
    scope: Scope
    path_params: dict[str, str]
    query: dict[str, str]

    @property
    def state(self) -> Any:
        """``app.state`` of the application this router serves."""
        return self.scope["app"].state

    def url_with(self, **params: str) -> str:
        """This request's absolute URL with some query parameters replaced."""
        from starlette.datastructures import URL

        return str(URL(scope=self.scope).include_query_params(**params))


LeanHandler = Callable[[LeanRequest], Awaitable[LeanResponse]]


@dataclass(frozen=True)
class LeanRoute:
    """One GET route: its path template, handler and what the OpenAPI document says."""

    path: str  # the template, e.g. "/x/v1/resourcePools/{resourcePoolId}" (metrics label)
    handler: LeanHandler
    operation_id: str
    summary: str
    model: type[BaseModel] | None = None
    many: bool = False
    query: QueryKind = "none"
    not_found: bool = False
    tag: str = ""
    #: lists: a bare array (standard surface) or ``{"items": [...], "nextMarker": ...}``
    envelope: Literal["array", "items"] = "array"
    #: methods of this path that the application behind the router serves (writes)
    passthrough: frozenset[str] = frozenset()
    regex: re.Pattern[str] | None = field(init=False, default=None)
    params: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        parts = re.split(r"{(\w+)}", self.path)  # literal, name, literal, name, ...
        names = tuple(parts[1::2])
        object.__setattr__(self, "params", names)
        if names:
            pattern = "".join(
                re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
                for index, part in enumerate(parts)
            )
            object.__setattr__(self, "regex", re.compile(pattern + "$"))


class LeanRouter:
    """ASGI middleware: answers its routes itself, passes every other request on."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[LeanRoute]) -> None:
        self.app = app
        self.static = {route.path: route for route in routes if route.regex is None}
        self.dynamic = [route for route in routes if route.regex is not None]
        self.prefixes = tuple({"/" + route.path.split("/")[1] for route in routes})

    def match(self, path: str) -> tuple[LeanRoute, dict[str, str]] | None:
        route = self.static.get(path)
        if route is not None:
            return route, {}
        for route in self.dynamic:
            assert route.regex is not None
            found = route.regex.match(path)
            if found is not None:
                return route, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        matched = self.match(scope["path"])
        if matched is None:
            await self.app(scope, receive, send)
            return
        route, path_params = matched
        if scope["method"] in route.passthrough:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        try:
            if scope["method"] != "GET":
                allowed = ["GET", *sorted(route.passthrough)]
                raise MethodNotAllowedError(
                    f"{scope['method']} is not supported on {scope['path']}; "
                    f"allowed: {', '.join(allowed)}",
                    allow=allowed,
                )
            raw_query = scope["query_string"]
            query = (
                dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
                if raw_query
                else {}
            )
            response = await route.handler(LeanRequest(scope, path_params, query))
        except O2Error as error:
            response = LeanResponse(
                body=problem_body(error, instance=scope["path"]),
                status=error.status,
                headers=tuple(error.headers.items()),
                media_type=PROBLEM_JSON,
            )
        headers = [
            (b"content-type", response.media_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
        ]
        headers.extend((name.lower().encode(), value.encode()) for name, value in response.headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


# OpenAPI -------------------------------------------------------------------------------

_LIST_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "filter",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "SOL013 filter, e.g. `(eq,name,'my pool');(in,extensions/country,ES,US)`.",
    },
    {
        "name": "nextpage_opaque_marker",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": 'Paging marker taken from the previous page\'s `Link: rel="next"`.',
    },
]
_FIELD_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "fields",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Comma-separated attribute paths to include (`/` for nesting).",
    },
    {
        "name": "exclude_fields",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Comma-separated attribute paths to leave out; wins over `fields`.",
    },
    {
        "name": "all_fields",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "schema": {"type": "string"},
        "description": "Flag: include every attribute.",
    },
    {
        "name": "exclude_default",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "schema": {"type": "string"},
        "description": "Flag: leave out complex (object and array) attributes.",
    },
]
_PROBLEM_REF = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}


def openapi_paths(
    routes: Sequence[LeanRoute],
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """The OpenAPI ``paths`` of the routes and the component schemas they refer to."""
    wanted: set[type[BaseModel]] = {ProblemDetails}
    wanted.update(route.model for route in routes if route.model is not None)
    models = sorted(wanted, key=lambda model: model.__name__)
    _, definitions = models_json_schema(
        [(model, "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, Any] = {}
    for route in routes:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.params
        ]
        if route.query == "list":
            parameters += _LIST_PARAMETERS + _FIELD_PARAMETERS
        elif route.query == "fields":
            parameters += _FIELD_PARAMETERS
        schema: dict[str, Any] = {}
        if route.model is not None:
            ref = {"$ref": f"#/components/schemas/{route.model.__name__}"}
            schema = {"type": "array", "items": ref} if route.many else ref
            if route.many and route.envelope == "items":
                schema = {
                    "type": "object",
                    "properties": {
                        "items": schema,
                        "nextMarker": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    },
                    "required": ["items", "nextMarker"],
                }
        responses: dict[str, Any] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
            "400": {"description": "Bad request", "content": _PROBLEM_REF},
            "500": {"description": "Internal error", "content": _PROBLEM_REF},
            "503": {"description": "Inventory not synchronised yet", "content": _PROBLEM_REF},
        }
        if route.not_found:
            responses["404"] = {"description": "No such object", "content": _PROBLEM_REF}
        if route.many and route.envelope == "array":
            responses["200"]["headers"] = {
                "Link": {"schema": {"type": "string"}, "description": "Next page (rel=next)."},
                "X-Total-Count": {"schema": {"type": "integer"}},
            }
        elif route.many:
            responses["200"]["headers"] = {"X-Total-Count": {"schema": {"type": "integer"}}}
        paths[route.path] = {
            "get": {
                "operationId": route.operation_id,
                "summary": route.summary,
                "tags": [route.tag] if route.tag else [],
                "parameters": parameters,
                "responses": responses,
            }
        }
    return paths, definitions.get("$defs", {})
