"""OpenTelemetry tracing: requests, backend and store calls, and every notification.

Off by default.  Tracing turns on only when the standard variables ask for it:

* ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keeps it off, whatever else
  is set;
* ``OTEL_TRACES_EXPORTER=otlp`` turns it on (an exporter netweave does not ship, such as
  ``zipkin``, is warned about and ignored);
* with ``OTEL_TRACES_EXPORTER`` unset, setting ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` turns it on.

The exporter is OTLP over HTTP/protobuf (the default) or gRPC
(``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL=grpc``); the SDK itself reads the other standard
variables (endpoint, headers, certificates, timeout, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_BSP_*``).  Incoming
``traceparent`` headers (W3C Trace Context) are honoured.

What becomes a span:

* each HTTP request, a server span ``METHOD /route/{template}`` (the request context
  middleware), with the tenant of its principal -- never a credential;
* as children of whatever span is current, and never on their own: the Redis store's
  calls and the Kubernetes API requests.  Background loops (the outbox poll, the lease
  renewal) therefore make no traces;
* each inventory change the view applies, each alarm item the alarm engine applies, and a
  Kubernetes relist, as spans of their own;
* each notification: the engine's span for the change (from the moment it took it to the
  moment its deliveries were written), a child for matching the subscriptions, and every
  delivery attempt as a child of that span, although attempts run later, elsewhere,
  perhaps on another replica: the :class:`~netweave.store.base.Delivery` record carries
  the ``traceparent``.  The POST to the subscriber carries the attempt span's own.

The state is module-level, one configuration per process, because the hot path must
decide with one attribute read: while tracing is off, callers check :data:`ENABLED` (or
call a helper whose first step is that check) and touch no span or context at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

__all__ = [
    "ENABLED",
    "ChangeTraces",
    "ServerSpan",
    "SpanKind",
    "Tracing",
    "TracingChoice",
    "build_exporter",
    "child_span",
    "choose",
    "current_ids",
    "current_span",
    "delivery_attempt",
    "failed",
    "http_status",
    "inject",
    "set_attributes",
    "setup",
    "span",
    "traceparent",
    "with_tracing",
]

_App = TypeVar("_App")
Attributes = Mapping[str, AttributeValue]
#: attributes, or a function giving them (called only when a span is really started)
LazyAttributes = Attributes | Callable[[], Attributes] | None
OtlpProtocol = Literal["http/protobuf", "grpc"]

#: True while a tracer is installed; the one thing the hot path reads when tracing is off
ENABLED = False
_tracer: trace.Tracer | None = None
_active: Tracing | None = None

_PROPAGATOR: Final = TraceContextTextMapPropagator()
_NO_SPAN: Final[AbstractContextManager[None]] = contextlib.nullcontext()
_SCOPE_PRINCIPAL: Final = "netweave.principal"
_SCOPE_NESTED: Final = "netweave.nested"
_UNMATCHED: Final = "<unmatched>"

_log = structlog.get_logger(component="netweave.tracing")


# Configuration ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TracingChoice:
    """What the environment asks for: tracing on or off, the OTLP protocol, and the
    settings that were ignored (warned about when tracing is set up)."""

    enabled: bool
    protocol: OtlpProtocol = "http/protobuf"
    warnings: tuple[str, ...] = ()


def choose(environ: Mapping[str, str]) -> TracingChoice:
    """Apply the rule of the module docstring to ``environ`` (nothing else is read).

    As the OpenTelemetry specification asks, a value netweave does not recognise is
    ignored with a warning rather than refused.
    """
    warnings: list[str] = []
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TracingChoice(enabled=False)
    raw = environ.get("OTEL_TRACES_EXPORTER", "")
    exporters = {name.strip().lower() for name in raw.split(",") if name.strip()}
    unknown = sorted(exporters - {"otlp", "none"})
    if unknown:
        warnings.append(
            f"OTEL_TRACES_EXPORTER={raw}: netweave exports traces with otlp only; "
            f"ignoring {', '.join(unknown)}"
        )
    if "none" in exporters:
        enabled = False
    elif exporters:
        enabled = "otlp" in exporters
    else:
        enabled = any(
            environ.get(name, "").strip()
            for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
    protocol: OtlpProtocol = "http/protobuf"
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(name, "").strip().lower()
        if not value:
            continue
        if value == "grpc":
            protocol = "grpc"
        elif value != "http/protobuf":
            warnings.append(
                f"{name}={value}: netweave speaks OTLP as http/protobuf or grpc; "
                "using http/protobuf"
            )
        break
    return TracingChoice(enabled=enabled, protocol=protocol, warnings=tuple(warnings))


def build_exporter(protocol: OtlpProtocol) -> SpanExporter:
    """The OTLP span exporter of ``protocol``; it reads its endpoint, headers, TLS files,
    timeout and compression from the standard variables.  Imported only when chosen (the
    gRPC one loads grpcio)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


class Tracing:
    """The installed tracer provider; :meth:`shutdown` exports what is left and turns
    tracing off again (the lifespan's last step)."""

    def __init__(self, provider: TracerProvider, protocol: OtlpProtocol) -> None:
        self.provider = provider
        self.protocol = protocol

    def shutdown(self) -> None:
        """Flush and stop; blocking (up to the exporter's timeout): run it in a thread."""
        global ENABLED, _tracer, _active
        if _active is self:
            ENABLED, _tracer, _active = False, None, None
        self.provider.shutdown()


def setup(
    environ: Mapping[str, str],
    *,
    service_version: str,
    exporter: SpanExporter | None = None,
) -> Tracing | None:
    """Install tracing for this process if ``environ`` asks for it; None when it does not.

    Nothing is installed globally in OpenTelemetry (``trace.set_tracer_provider`` can be
    called once per process, and tests start several gateways): netweave's spans come from
    its own provider.  ``exporter`` replaces the OTLP one (for tests of the wiring only).
    """
    global ENABLED, _tracer, _active
    choice = choose(environ)
    for warning in choice.warnings:
        _log.warning("tracing setting ignored", detail=warning)
    if not choice.enabled:
        return None
    defaults: dict[str, AttributeValue] = {SERVICE_VERSION: service_version}
    if not environ.get("OTEL_SERVICE_NAME") and "service.name=" not in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        defaults[SERVICE_NAME] = "netweave"
    provider = TracerProvider(resource=Resource.create(defaults))  # sampler: OTEL_TRACES_*
    provider.add_span_processor(BatchSpanProcessor(exporter or build_exporter(choice.protocol)))
    handle = Tracing(provider, choice.protocol)
    if _active is not None:
        _log.warning("tracing was already set up in this process; replacing it")
    _tracer = provider.get_tracer("netweave", service_version)
    _active = handle
    ENABLED = True
    _log.info("tracing on", protocol=choice.protocol)
    return handle


def with_tracing(
    lifespan: Callable[[_App], AbstractAsyncContextManager[None]],
    *,
    environ: Mapping[str, str],
    service_version: str,
) -> Callable[[_App], AbstractAsyncContextManager[None]]:
    """``lifespan`` with tracing set up from ``environ`` before it starts anything and
    flushed and shut down after it stopped everything (in a thread: the last export may
    wait for the collector)."""

    @contextlib.asynccontextmanager
    async def traced(app: _App) -> AsyncIterator[None]:
        handle = setup(environ, service_version=service_version)
        try:
            async with lifespan(app):
                yield
        finally:
            if handle is not None:
                await asyncio.to_thread(handle.shutdown)

    return traced


# Spans for anyone ---------------------------------------------------------------------------


def _resolve(attributes: LazyAttributes) -> Attributes | None:
    return attributes() if callable(attributes) else attributes


def span(
    name: str, attributes: LazyAttributes = None, *, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Span | None]:
    """A span current for the block: a child of the current span, or a new trace."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, kind=kind, attributes=_resolve(attributes))


def child_span(
    name: str, attributes: LazyAttributes = None, *, kind: SpanKind = SpanKind.CLIENT
) -> AbstractContextManager[Span | None]:
    """A span current for the block, but only under a current span: a store call or a
    backend request made by a background loop starts no trace of its own."""
    tracer = _tracer
    if tracer is None or not trace.get_current_span().get_span_context().is_valid:
        return _NO_SPAN
    return tracer.start_as_current_span(name, kind=kind, attributes=_resolve(attributes))


def set_attributes(attributes: LazyAttributes) -> None:
    """Add attributes to the current span (nothing when tracing is off)."""
    if ENABLED:
        resolved = _resolve(attributes)
        if resolved:
            trace.get_current_span().set_attributes(resolved)


def http_status(current: Span | None, status: int) -> None:
    """Record the answer of an outgoing HTTP request on its client span (>= 400 fails)."""
    if current is None:
        return
    current.set_attribute("http.response.status_code", status)
    if status >= 400:
        failed(current, str(status))


def failed(current: Span | None, error_type: str, description: str | None = None) -> None:
    """Mark a span failed: ``error.type`` and an error status (``description`` must hold
    no secret: no URL, no credential)."""
    if current is None:
        return
    current.set_attribute("error.type", error_type)
    current.set_status(Status(StatusCode.ERROR, description))


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's ``traceparent`` (and ``tracestate``) to outgoing headers."""
    if ENABLED:
        _PROPAGATOR.inject(headers)


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to carry it across the outbox."""
    if not ENABLED:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex (for log lines), if there is one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# HTTP requests ------------------------------------------------------------------------------


class _AsgiHeaders(Getter[list[tuple[bytes, bytes]]]):
    """Reads a W3C header from an ASGI scope's raw header list."""

    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        wanted = key.encode("latin-1")
        found = [value.decode("latin-1") for name, value in carrier if name == wanted]
        return found or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [name.decode("latin-1") for name, _ in carrier]


_ASGI_HEADERS: Final = _AsgiHeaders()


class ServerSpan:
    """The span of one HTTP request, current while the request runs.

    Started by the request context middleware (only when :data:`ENABLED`); an incoming
    ``traceparent`` makes it a child of the caller's span.  A request the gateway sends
    itself (an operation of a batch) is an internal span under the batch's request.
    """

    __slots__ = ("_scope", "_token", "span")

    def __init__(self, scope: MutableMapping[str, Any], request_id: str) -> None:
        tracer = _tracer
        if tracer is None:
            raise RuntimeError("tracing is off")
        self._scope = scope
        parent = _PROPAGATOR.extract(
            scope["headers"], context=otel_context.get_current(), getter=_ASGI_HEADERS
        )
        nested = bool(scope.get(_SCOPE_NESTED))
        attributes: dict[str, AttributeValue] = {
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
            "netweave.request_id": request_id,
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        agent = _ASGI_HEADERS.get(scope["headers"], "user-agent")
        if agent:
            attributes["user_agent.original"] = agent[0][:256]
        self.span = tracer.start_span(
            scope["method"],
            context=parent,
            kind=SpanKind.INTERNAL if nested else SpanKind.SERVER,
            attributes=attributes,
        )
        self._token = otel_context.attach(trace.set_span_in_context(self.span, parent))

    def failed(self, error: BaseException) -> None:
        """An exception escaped the application (it becomes a 500)."""
        self.span.record_exception(error)

    def finish(self, *, route: str, method: str, status: int) -> None:
        """Name the span after its route template, record the answer, end it."""
        current = self.span
        if route != _UNMATCHED:
            current.update_name(f"{method} {route}")
            current.set_attribute("http.route", route)
        current.set_attribute("http.response.status_code", status)
        principal = self._scope.get(_SCOPE_PRINCIPAL)
        tenant = getattr(principal, "tenant", None)
        if tenant is not None:
            current.set_attribute("netweave.tenant", tenant)
        if status >= 500:  # a 4xx is the client's mistake, not the server span's error
            current.set_attribute("error.type", str(status))
            current.set_status(Status(StatusCode.ERROR))
        current.end()
        otel_context.detach(self._token)


# Notifications ------------------------------------------------------------------------------


class ChangeTraces:
    """The engine spans of the changes a notification engine has taken.

    :meth:`taken` remembers, per change object, the context it was taken in (the view's
    span for the change) and when; :meth:`change` starts the change's span with that
    start time when the engine processes it, current for the block (matching and the
    deliveries' ``traceparent`` are under it) but left open; :meth:`writing` covers the
    store calls that write the batch and ends the spans -- so a change's span lasts from
    being taken to its deliveries being durable.  A batch that fails to be written ends
    its spans with an error and keeps the contexts for the next try.
    """

    def __init__(self) -> None:
        self._taken: dict[int, tuple[otel_context.Context, int]] = {}
        self._open: list[Span] = []

    def taken(self, change: object) -> None:
        if ENABLED:
            self._taken[id(change)] = (otel_context.get_current(), time.time_ns())

    def forget(self, change: object) -> None:
        """The change will not be processed here (dropped, or already notified)."""
        if self._taken:
            self._taken.pop(id(change), None)

    def change(
        self, change: object, name: str, attributes: LazyAttributes = None
    ) -> AbstractContextManager[Span | None]:
        tracer = _tracer
        taken = self._taken.get(id(change)) if tracer is not None else None
        if tracer is None or taken is None:
            return _NO_SPAN
        parent, started = taken
        opened = tracer.start_span(
            name, context=parent, attributes=_resolve(attributes), start_time=started
        )
        self._open.append(opened)
        return trace.use_span(opened, end_on_exit=False)

    @contextlib.contextmanager
    def writing(self, changes: Iterable[object]) -> Iterator[None]:
        if not self._open:
            yield
            for change in changes:
                self.forget(change)
            return
        opened, self._open = self._open, []
        try:
            with trace.use_span(opened[0], end_on_exit=False):
                yield
        except BaseException as exc:  # a store outage, or the engine stopping
            for unwritten in opened:
                unwritten.set_status(Status(StatusCode.ERROR, f"not written: {type(exc).__name__}"))
                unwritten.end()
            raise
        for done in opened:
            done.end()
        for change in changes:
            self.forget(change)


def delivery_attempt(
    parent: str | None,
    *,
    callback: str,
    attributes: Attributes,
) -> AbstractContextManager[Span | None]:
    """The span of one delivery attempt (a client span: the POST to the subscriber),
    current for the block: a child of the engine's span ``parent`` carried by the
    delivery record, or a trace of its own for a record written without one.  Only the
    callback's scheme, host and port are recorded: its path or query may hold a secret."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    context = otel_context.Context()
    if parent:
        context = _PROPAGATOR.extract({"traceparent": parent}, context=context)
    url = urlsplit(callback)
    described: dict[str, AttributeValue] = {
        "http.request.method": "POST",
        "url.scheme": url.scheme,
        **attributes,
    }
    with contextlib.suppress(ValueError):  # a malformed port
        if url.hostname:
            described["server.address"] = url.hostname
        described["server.port"] = url.port or (443 if url.scheme == "https" else 80)
    return tracer.start_as_current_span(
        "notification delivery", context=context, kind=SpanKind.CLIENT, attributes=described
    )


def current_span() -> Span | None:
    """The current span while tracing is on (for callers adding an answer's status)."""
    return trace.get_current_span() if ENABLED else None
