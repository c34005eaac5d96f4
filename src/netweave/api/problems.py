"""RFC 7807 ProblemDetails: the one renderer of every error the gateway answers.

Handlers registered by :func:`install_problem_handlers` turn :class:`O2Error`,
Starlette's routing errors (404 for unknown paths, 405 with ``Allow``) and request
validation failures into ``application/problem+json`` responses.  Nothing from an
unexpected exception reaches the client; the 500 body names only the request id.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope, Send

from netweave.errors import (
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    O2Error,
    PayloadTooLargeError,
)

PROBLEM_JSON = "application/problem+json"

__all__ = [
    "PROBLEM_JSON",
    "install_problem_handlers",
    "problem_body",
    "problem_response",
    "send_problem",
]


def problem_body(error: O2Error, *, instance: str | None = None) -> bytes:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if instance:
        body["instance"] = instance
    if error.attributes:
        body["additionalAttributes"] = error.attributes
    return orjson.dumps(body)


def problem_response(error: O2Error, *, instance: str | None = None) -> Response:
    return Response(
        content=problem_body(error, instance=instance),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_o2_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, O2Error)
        return problem_response(exc, instance=request.url.path)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(_translate(request, exc), instance=request.url.path)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(
            InvalidRequestError(_describe_validation(exc)), instance=request.url.path
        )

    app.add_exception_handler(O2Error, on_o2_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


def _translate(request: Request, exc: StarletteHTTPException) -> O2Error:
    if exc.status_code == 404:
        return NotFoundError(f"no resource at {request.url.path}")
    if exc.status_code == 405:
        allow = _allowed_methods(request, exc)
        return MethodNotAllowedError(
            f"{request.method} is not supported on {request.url.path}; allowed: "
            + ", ".join(allow),
            allow=allow,
        )
    error = O2Error(str(exc.detail))
    error.status = exc.status_code
    error.title = _reason(exc.status_code)
    if exc.headers:
        error.headers.update(exc.headers)
    return error


def _allowed_methods(request: Request, exc: StarletteHTTPException) -> list[str]:
    """Every method the API defines on this path, in a stable order.

    Starlette names only the methods of the first route that matched the path; the
    OpenAPI document knows them all (several routes may share a path).
    """
    path = request.url.path
    methods = {
        method
        for pattern, allowed in _methods_by_path(request.app)
        if pattern.fullmatch(path)
        for method in allowed
    }
    if not methods:
        allow = (exc.headers or {}).get("Allow", "")
        methods = {method.strip() for method in allow.split(",") if method.strip()}
    return sorted(methods)


def _methods_by_path(app: FastAPI) -> list[tuple[re.Pattern[str], list[str]]]:
    cached: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        app.state, "methods_by_path", None
    )
    if cached is None:
        cached = []
        for template, operations in app.openapi().get("paths", {}).items():
            parts = re.split(r"{\w+}", template)
            pattern = re.compile("[^/]+".join(re.escape(part) for part in parts))
            methods = [method.upper() for method in operations if method != "parameters"]
            cached.append((pattern, methods))
        app.state.methods_by_path = cached
    return cached


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        loc = "/".join(str(part) for part in error.get("loc", ()) if part != "body") or "request"
        parts.append(f"{loc}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def send_problem(send: Send, error: O2Error, scope: Scope) -> None:
    """Answer with ``error`` as ProblemDetails straight from ASGI middleware."""
    body = problem_body(error, instance=scope["path"])
    headers: list[Any] = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers.extend((k.lower().encode(), v.encode()) for k, v in error.headers.items())
    if isinstance(error, PayloadTooLargeError):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
