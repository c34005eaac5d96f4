"""The request-context middleware: one small ASGI class wrapped around the whole app.

For every HTTP request it

* assigns a request id (a sane incoming ``X-Request-ID`` is kept), binds it to every
  log line through structlog's contextvars and returns it in ``X-Request-ID``;
* adds the security headers to every answer (``nosniff``, no framing, no caching, no
  referrer, a deny-all content security policy except on the interactive docs, and
  HSTS when serving TLS);
* refuses bodies larger than ``max_body_bytes`` with 413 and bodies that are not JSON
  with 415, before any route runs (the gateway accepts JSON bodies only);
* turns any unexpected exception into a 500 ProblemDetails that names the request id
  and nothing else, and logs the exception;
* records the request count and latency by route template, method and status, and
  writes one access-log line;
* while tracing is on, runs the request under its server span
  (:class:`~netweave.observability.tracing.ServerSpan`), so the access-log line and
  every line logged meanwhile carry its trace id.

It is a plain ASGI class rather than Starlette's ``BaseHTTPMiddleware``, which costs a
task and a stream per request.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netweave.api.problems import send_problem
from netweave.errors import (
    InternalError,
    O2Error,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from netweave.observability import tracing
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics
from netweave.security.authentication import VIA_PROXY_SCOPE_KEY
from netweave.security.tls import trusted_proxy

__all__ = ["REQUEST_ID_SCOPE_KEY", "VIA_PROXY_SCOPE_KEY", "RequestContextMiddleware"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_JSON_TYPE = re.compile(rb"application/([a-z0-9.+-]+\+)?json", re.IGNORECASE)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNMATCHED = "<unmatched>"

#: where the request id is kept in the ASGI scope (for the audit trail)
REQUEST_ID_SCOPE_KEY = "netweave.request_id"
#: the interactive docs load their scripts and styles, so they get no deny-all CSP
_DOCS_PAGES = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def _security_headers(tls: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
    ]
    if tls:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


_log = get_logger("netweave.access")


class _BodyTooLarge(Exception):
    """A streamed request body went past ``max_body_bytes``."""


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        access_log: bool,
        security_headers: bool = True,
        tls: bool = False,
        trusted_proxies: Sequence[IPNetwork] = (),
    ) -> None:
        self.app = app
        self.proxies = list(trusted_proxies)
        self.headers = _security_headers(tls) if security_headers else []
        self.csp = [_CSP] if security_headers else []
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if self.proxies:
            _apply_forwarded(scope, self.proxies)
        request_id = _request_id(scope)
        raw_id = request_id.encode()
        # a request the gateway sends itself (an operation of a batch) gives the context back
        outer = structlog.contextvars.get_contextvars() if scope.get("netweave.nested") else None
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        traced = tracing.ServerSpan(scope, request_id) if tracing.ENABLED else None
        status = 500
        response_started = False
        added = [(b"x-request-id", raw_id), *self.headers]
        if scope["path"] not in _DOCS_PAGES:
            added.extend(self.csp)

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await send_problem(send_with_id, refusal, scope)
            else:
                await self.app(scope, await self._buffered(scope, receive), send_with_id)
        except _BodyTooLarge:
            if not response_started:
                await send_problem(send_with_id, self._too_large(), scope)
        except Exception as exc:
            if traced is not None:
                traced.failed(exc)
            _log.exception("unhandled error while answering a request", path=scope["path"])
            if not response_started:
                error = InternalError(
                    f"the gateway failed to answer this request; reference {request_id}"
                )
                await send_problem(send_with_id, error, scope)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", _UNMATCHED) if route is not None else _UNMATCHED
            method = scope["method"]
            if method not in _KNOWN_METHODS:  # a client must not mint metric series
                method = "OTHER"
            counter, histogram = self._series(template, method, status)
            counter.inc()
            histogram.observe(elapsed)
            if self.access_log:
                _log.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                )
            if traced is not None:
                traced.finish(route=template, method=method, status=status)
            structlog.contextvars.clear_contextvars()
            if outer:
                structlog.contextvars.bind_contextvars(**outer)

    def _series(self, template: str, method: str, status: int) -> tuple[Any, Any]:
        """The metric children of one (route, method, status), looked up once each."""
        key = (template, method, status)
        series = self._children.get(key)
        if series is None:
            series = (
                self.metrics.http_requests.labels(template, method, str(status)),
                self.metrics.http_latency.labels(template, method),
            )
            self._children[key] = series
        return series

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"request body exceeds {self.max_body_bytes} bytes")

    def _refusal(self, scope: Scope) -> O2Error | None:
        if scope["method"] in _BODYLESS_METHODS:
            return None  # a body sent with these is never read
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        has_body = b"transfer-encoding" in headers
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return None  # the HTTP parser has already rejected such a request
            if size > self.max_body_bytes:
                return self._too_large()
            has_body = has_body or size > 0
        if has_body and scope["method"] in _BODY_METHODS:
            content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip()
            if not _JSON_TYPE.fullmatch(content_type):
                shown = content_type.decode("latin-1") or "none"
                return UnsupportedMediaTypeError(
                    f"request bodies must be JSON (application/json); got {shown}"
                )
        return None

    async def _buffered(self, scope: Scope, receive: Receive) -> Receive:
        """Read a request body completely (at most ``max_body_bytes``) and replay it.

        Streaming (chunked) bodies have no Content-Length to check up front, so the
        limit is enforced here, before any route parses the body.
        """
        if scope["method"] not in _BODY_METHODS:
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _apply_forwarded(scope: Scope, proxies: Sequence[IPNetwork]) -> None:
    """Behind a trusted proxy: the client and scheme it forwards become the request's.

    The direct peer is kept under :data:`VIA_PROXY_SCOPE_KEY`, which is what lets a
    forwarded client certificate (``X-Forwarded-Client-Cert``) count.  ``X-Forwarded-For``
    is read right to left, skipping the trusted proxies themselves.
    """
    client = scope.get("client")
    if not client or not trusted_proxy(client[0], proxies):
        return
    scope[VIA_PROXY_SCOPE_KEY] = client[0]
    forwarded_for = forwarded_proto = None
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            forwarded_for = value.decode("latin-1")
        elif name == b"x-forwarded-proto":
            forwarded_proto = value.decode("latin-1").strip().lower()
    if forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not trusted_proxy(hop, proxies):
                scope["client"] = (hop, 0)
                break
    if forwarded_proto in ("http", "https"):
        scope["scheme"] = forwarded_proto


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return _REQUEST_IDS.next()


class _RequestIds:
    """32-hex-digit request ids: a random per-process prefix and a counter.

    Unique across replicas (64 random bits each) and cheap: no system call per request.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_REQUEST_IDS = _RequestIds()
