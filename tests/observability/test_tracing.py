"""Tracing end to end: gateways exporting to a real OTLP receiver on loopback.

The receiver is a tiny HTTP server decoding ``ExportTraceServiceRequest`` protobufs (and,
for the gRPC exporter, a real gRPC ``TraceService``).  Gateways run in-process
(``serve_gateway``) with the standard ``OTEL_*`` variables; their lifespan sets tracing up
and flushes it when they stop, so most checks read the spans after the gateway stopped.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import yaml
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.api.test_subscriptions import churn
from tests.credentials import AUDIENCE, ISSUER, TokenIssuer
from tests.servers import RunningGateway, free_port, gateway_processes, serve_gateway
from tests.unit.notifications.test_notification_engine import pool_event
from tests.waiting import eventually
from tests.webhooks import Receiver, running_receiver

from netweave import __version__
from netweave.errors import BackendUnavailableError
from netweave.notifications.engine import NotificationEngine
from netweave.observability import tracing
from netweave.observability.logging import add_trace_ids
from netweave.store.base import Delivery, SubscriptionRecord
from netweave.store.memory import InMemoryStore
from netweave.store.redis import RedisStore

INV = "/o2ims-infrastructureInventory/v1"
SUBS = f"{INV}/subscriptions"
ALARM_SUBS = "/o2ims-infrastructureMonitoring/v1/alarmSubscriptions"
POOL_ROUTE = f"{INV}/resourcePools/{{resourcePoolId}}"
SERVER, CLIENT, INTERNAL = 2, 3, 1  # Span.SpanKind in the OTLP protobuf
STATUS_ERROR = 2
HTTP = "http/protobuf"


# The receivers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """One span as the collector received it (ids in hex, attributes as Python values)."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    status: int
    resource: dict[str, Any]


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    return None if which is None else getattr(value, which)


def decode(request: trace_service_pb2.ExportTraceServiceRequest) -> list[Exported]:
    found = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    Exported(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        status=span.status.code,
                        resource=resource,
                    )
                )
    return found


@dataclass
class Collector:
    """What a receiver got: every span, and how many export requests brought them."""

    requests: int = 0
    _spans: list[Exported] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self._lock:
            self.requests += 1
            self._spans.extend(decode(request))

    def spans(self, name: str | None = None) -> list[Exported]:
        with self._lock:
            return [s for s in self._spans if name is None or s.name == name]

    def by_id(self, span_id: str) -> Exported:
        [found] = [s for s in self.spans() if s.span_id == span_id]
        return found

    def children(self, parent: Exported, name: str | None = None) -> list[Exported]:
        return [
            s
            for s in self.spans(name)
            if s.parent_id == parent.span_id and s.trace_id == parent.trace_id
        ]


class _OtlpHandler(http.server.BaseHTTPRequestHandler):
    collector: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
            self.send_error(404)
            return
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.collector.add(request)
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def otlp() -> Iterator[tuple[str, Collector]]:
    """A real OTLP/HTTP receiver on loopback: its base URL and what it collected."""
    collector = Collector()
    handler = type("Handler", (_OtlpHandler,), {"collector": collector})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _GrpcTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def Export(self, request: Any, context: Any) -> Any:
        self.collector.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


# Environment --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's OTEL_* variables."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def traced_env(otlp: tuple[str, Collector], monkeypatch: pytest.MonkeyPatch) -> Collector:
    """Gateways started from now on export to the receiver (nothing else is set but a
    short batch delay)."""
    url, collector = otlp
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    return collector


def get(gateway: RunningGateway, path: str, **headers: str) -> httpx.Response:
    return httpx.get(gateway.base_url + path, headers=headers, trust_env=False, timeout=10)


def a_pool(gateway: RunningGateway) -> str:
    listing = get(gateway, f"{INV}/resourcePools")
    assert listing.status_code == 200
    pool_id: str = listing.json()[0]["resourcePoolId"]
    return pool_id


# The rule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "enabled", "protocol"),
    [
        ({}, False, HTTP),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False, HTTP),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True, HTTP),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1/v1/traces"}, True, HTTP),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True, HTTP),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, True, "grpc"),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            True,
            "http/protobuf",
        ),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False, HTTP),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False, HTTP),
        ({"OTEL_TRACES_EXPORTER": "console"}, False, HTTP),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, True, HTTP),
    ],
)
def test_the_environment_decides(environ: dict[str, str], enabled: bool, protocol: str) -> None:
    choice = tracing.choose(environ)
    assert (choice.enabled, choice.protocol) == (enabled, protocol)


def test_unknown_values_are_warned_about_and_ignored() -> None:
    choice = tracing.choose(
        {"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
    )
    assert not choice.enabled
    assert any("zipkin" in warning for warning in choice.warnings)
    assert any("http/json" in warning for warning in choice.warnings)


def test_the_grpc_exporter_is_chosen_for_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    chosen = tracing.choose({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).protocol
    grpc_exporter = tracing.build_exporter(chosen)
    http_exporter = tracing.build_exporter(tracing.choose({}).protocol)
    try:
        assert isinstance(grpc_exporter, GrpcExporter)
        assert isinstance(http_exporter, HttpExporter)
    finally:
        grpc_exporter.shutdown()
        http_exporter.shutdown()


# Off ----------------------------------------------------------------------------------------


def test_without_otel_variables_nothing_is_traced(receiver: Receiver) -> None:
    with serve_gateway(callback_allowlist="127.0.0.1", callback_verify_timeout=0.5) as gateway:
        assert tracing.ENABLED is False
        assert tracing._active is None
        assert not isinstance(trace.get_tracer_provider(), TracerProvider)
        path = f"/off/{uuid.uuid4()}"
        created = httpx.post(
            gateway.base_url + SUBS,
            json={"callback": receiver.script(path), "filter": "(eq,objectType,ResourceInfo)"},
            headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"},
            trust_env=False,
        )
        assert created.status_code == 201
        churn(gateway, steps=3)
        posted = eventually(lambda: receiver.received(path))
        assert "traceparent" not in posted[0].headers
        assert gateway.app.state.notifications._traces._taken == {}


def test_traces_exporter_none_exports_nothing(
    traced_env: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    with serve_gateway() as gateway:
        assert tracing.ENABLED is False
        assert get(gateway, f"{INV}/resourcePools").status_code == 200
    assert traced_env.requests == 0


# Requests -----------------------------------------------------------------------------------


def test_a_request_is_a_server_span_named_by_its_route(traced_env: Collector) -> None:
    with serve_gateway(access_log=False) as gateway:
        assert tracing.ENABLED is True
        pool_id = a_pool(gateway)
        assert get(gateway, f"{INV}/resourcePools/{pool_id}").status_code == 200
        assert get(gateway, f"{INV}/resourcePools/{uuid.uuid4()}").status_code == 404
        assert get(gateway, "/nowhere").status_code == 404
        # exported while the gateway runs (the batch delay is 50 ms), not only at its end
        eventually(lambda: len(traced_env.spans(f"GET {POOL_ROUTE}")) >= 2)
    assert tracing.ENABLED is False  # the lifespan's end turned it off

    found, missing = sorted(
        traced_env.spans(f"GET {POOL_ROUTE}"),
        key=lambda s: s.attributes["http.response.status_code"],
    )
    assert found.kind == SERVER
    assert found.parent_id == ""  # no traceparent came in: a trace of its own
    assert found.attributes["http.route"] == POOL_ROUTE
    assert found.attributes["http.request.method"] == "GET"
    assert found.attributes["url.path"] == f"{INV}/resourcePools/{pool_id}"
    assert found.attributes["http.response.status_code"] == 200
    assert found.attributes["client.address"] == "127.0.0.1"
    assert len(found.attributes["netweave.request_id"]) == 32
    assert "netweave.tenant" not in found.attributes  # the open gateway's principal has none
    assert found.status != STATUS_ERROR
    assert missing.attributes["http.response.status_code"] == 404
    assert missing.status != STATUS_ERROR  # a 4xx is not the server's failure
    [unmatched] = [s for s in traced_env.spans("GET") if s.attributes["url.path"] == "/nowhere"]
    assert "http.route" not in unmatched.attributes
    assert found.resource["service.name"] == "netweave"
    assert found.resource["service.version"] == __version__


def test_an_incoming_traceparent_makes_the_request_a_child(traced_env: Collector) -> None:
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    with serve_gateway(access_log=False) as gateway:
        answer = get(gateway, f"{INV}/resourcePools", traceparent=f"00-{trace_id}-{parent_id}-01")
        assert answer.status_code == 200
    [span] = [s for s in traced_env.spans(f"GET {INV}/resourcePools") if s.trace_id == trace_id]
    assert span.parent_id == parent_id
    assert span.kind == SERVER


def test_a_broken_traceparent_starts_a_new_trace(traced_env: Collector) -> None:
    with serve_gateway(access_log=False) as gateway:
        assert get(gateway, f"{INV}/resourcePools", traceparent="00-nonsense-01").status_code == 200
    [span] = traced_env.spans(f"GET {INV}/resourcePools")
    assert span.parent_id == ""


def test_log_lines_carry_the_trace_and_span_ids(traced_env: Collector, tmp_path: Path) -> None:
    """``netweave serve`` as its own process (its logging configured as in production)."""
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    with gateway_processes(1, tmp_path) as [gateway]:
        answer = httpx.get(
            f"{gateway.base_url}{INV}/resourcePools",
            headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            trust_env=False,
        )
        assert answer.status_code == 200
        gateway.stop()  # the lifespan's end flushes the spans
    lines = [orjson.loads(line) for line in gateway.log.read_bytes().splitlines() if line]
    [access] = [
        line
        for line in lines
        if line.get("event") == "request" and line.get("path") == f"{INV}/resourcePools"
    ]
    [span] = [s for s in traced_env.spans(f"GET {INV}/resourcePools") if s.trace_id == trace_id]
    assert access["trace_id"] == trace_id
    assert access["span_id"] == span.span_id
    assert access["request_id"] == span.attributes["netweave.request_id"]
    assert span.resource["service.name"] == "netweave"
    # lines logged outside any span (start-up, shutdown) carry no ids
    assert any(line.get("event") == "netweave stopped" for line in lines)
    assert not any("trace_id" in line for line in lines if line.get("event") != "request")


def test_log_lines_carry_no_ids_when_tracing_is_off() -> None:
    event = {"event": "something"}
    assert tracing.ENABLED is False
    assert add_trace_ids(None, "info", dict(event)) == event


TENANCY = {
    "tenants": [{"tenantId": "smo-a", "name": "SMO A"}],
    "users": [{"tenantId": "smo-a", "subject": "smo-a-client"}],
    "roleBindings": [
        {"subject": "smo-a-client", "role": "tenant-viewer", "tenantId": "smo-a"},
        {"subject": "ops", "role": "platform-admin"},
    ],
}


def test_the_span_names_the_tenant_and_never_the_credentials(
    traced_env: Collector, tmp_path: Path
) -> None:
    issuer = TokenIssuer(tmp_path / "signing.pem")
    tenancy = tmp_path / "tenancy.yaml"
    tenancy.write_text(yaml.safe_dump(TENANCY))
    tenant_headers = issuer.headers("smo-a-client")
    with serve_gateway(
        access_log=False,
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_key_files=str(issuer.key_file),
        tenancy_file=tenancy,
    ) as gateway:
        assert get(gateway, f"{INV}/resourcePools", **tenant_headers).status_code == 200
        assert get(gateway, f"{INV}/resourcePools", **issuer.headers("ops")).status_code == 200
        refused = get(gateway, f"{INV}/resourcePools", Authorization="Bearer not-a-token")
        assert refused.status_code == 401
    # a refused request never reached its route: its span is named "GET" only
    spans = [
        s for s in traced_env.spans() if s.attributes.get("url.path") == f"{INV}/resourcePools"
    ]
    by_status: dict[int, list[Exported]] = {}
    for span in spans:
        by_status.setdefault(span.attributes["http.response.status_code"], []).append(span)
    tenants = sorted(str(s.attributes.get("netweave.tenant")) for s in by_status[200])
    assert tenants == ["None", "smo-a"]  # the platform principal has no tenant
    [unauthenticated] = by_status[401]
    assert unauthenticated.attributes["netweave.auth.failure"] == "invalid_token"
    token = tenant_headers["Authorization"].removeprefix("Bearer ")
    for span in traced_env.spans():
        for value in span.attributes.values():
            assert token not in str(value)
            assert "not-a-token" not in str(value)


# Notifications ------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_notification_is_one_trace_from_change_to_delivery(
    traced_env: Collector,
    receiver: Receiver,
    store: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    stored: dict[str, Any] = (
        {"redis_url": redis_url, "store_prefix": redis_prefix} if store == "redis" else {}
    )
    path = f"/traced/{uuid.uuid4()}"
    with serve_gateway(
        access_log=False,
        callback_allowlist="127.0.0.1",
        callback_verify_timeout=0.5,
        **stored,
    ) as gateway:
        created = httpx.post(
            gateway.base_url + SUBS,
            json={"callback": receiver.script(path), "filter": "(eq,objectType,ResourceInfo)"},
            trust_env=False,
            timeout=10,
        )
        assert created.status_code == 201
        churn(gateway, steps=4)  # every step changes a node
        posts = eventually(lambda: len(receiver.received(path)) >= 2 and receiver.received(path))
        time.sleep(0.2)  # the last attempts settle in the outbox

    checked = 0
    for post in posts:
        version, trace_id, span_id, flags = post.headers["traceparent"].split("-")
        assert version == "00"
        assert int(flags, 16) & 1  # sampled
        attempt = traced_env.by_id(span_id)
        assert attempt.trace_id == trace_id
        assert attempt.name == "notification delivery"
        assert attempt.kind == CLIENT
        assert attempt.attributes["netweave.notification_id"] == post.notification_id
        assert attempt.attributes["netweave.delivery.attempt"] == 1
        assert attempt.attributes["netweave.delivery.outcome"] == "delivered"
        assert attempt.attributes["http.response.status_code"] == 204
        assert attempt.attributes["server.address"] == "127.0.0.1"
        assert not any(path in str(value) for value in attempt.attributes.values())

        event = traced_env.by_id(attempt.parent_id)  # the engine's span of the change
        assert event.name == "notification event"
        assert event.trace_id == trace_id
        assert event.attributes["netweave.object.kind"] == "ResourceInfo"
        assert event.attributes["netweave.notification.matches"] >= 1
        assert traced_env.children(event, "notification match")
        change = traced_env.by_id(event.parent_id)  # the view's span of the change
        assert change.name == "inventory change"
        assert change.parent_id == ""
        assert change.attributes["netweave.backend"] == "simulated"
        assert change.attributes["netweave.object.id"] == event.attributes["netweave.object.id"]
        if store == "redis":
            assert traced_env.children(attempt, "redis complete")
        checked += 1
    assert checked >= 2
    if store == "redis":
        enqueues = traced_env.spans("redis enqueue")
        assert enqueues
        assert all(s.attributes["db.system.name"] == "redis" for s in enqueues)
        [subscribed] = traced_env.spans(f"POST {SUBS}")
        assert traced_env.children(subscribed, "redis add_subscription")
        # background polls (outbox takes, lease renewals) make no traces of their own
        assert not traced_env.spans("redis take_once")
        assert not traced_env.spans("redis acquire")


def test_an_alarm_notification_is_one_trace(traced_env: Collector, receiver: Receiver) -> None:
    path = f"/alarms/{uuid.uuid4()}"
    with serve_gateway(
        access_log=False, callback_allowlist="127.0.0.1", callback_verify_timeout=0.5
    ) as gateway:
        created = httpx.post(
            gateway.base_url + ALARM_SUBS,
            json={"callback": receiver.script(path), "filter": "NEW"},
            trust_env=False,
            timeout=10,
        )
        assert created.status_code == 201, created.text
        pool_id = a_pool(gateway)
        node = get(gateway, f"{INV}/resourcePools/{pool_id}/resources").json()[0]["resourceId"]
        adapter = gateway.app.state.view._adapter

        async def raise_alarm() -> None:
            adapter.set_condition(node, "node-not-ready", True)

        asyncio.run_coroutine_threadsafe(raise_alarm(), gateway.app.state.loop).result(10)
        [post] = eventually(lambda: receiver.received(path))
        time.sleep(0.2)  # the attempt settles in the outbox
    _, trace_id, span_id, _ = post.headers["traceparent"].split("-")
    attempt = traced_env.by_id(span_id)
    assert attempt.name == "notification delivery"
    assert attempt.attributes["netweave.notification_id"] == post.notification_id
    change = traced_env.by_id(attempt.parent_id)
    assert change.name == "alarm change"
    assert change.trace_id == trace_id
    assert change.attributes["netweave.alarm.raised"] is True
    assert change.attributes["netweave.resource_id"] == node
    assert traced_env.children(change, "alarm match")


class FlakyStore(InMemoryStore):
    """The in-memory store, whose first enqueue fails as an unreachable Redis would."""

    failed = False

    async def enqueue(self, deliveries: Sequence[Delivery]) -> list[str]:
        if not self.failed:
            self.failed = True
            raise BackendUnavailableError("store unavailable: cannot reach Redis")
        return await super().enqueue(deliveries)


async def test_a_change_written_on_the_second_try_has_a_failed_span_and_a_good_one() -> None:
    exporter = InMemorySpanExporter()
    handle = tracing.setup({"OTEL_TRACES_EXPORTER": "otlp"}, service_version="t", exporter=exporter)
    assert handle is not None
    try:
        store = FlakyStore()
        await store.add_subscription(SubscriptionRecord("s1", callback="http://smo.example/cb"))
        engine = NotificationEngine(store, api_root="http://gw", replica="r", retry_delay=0.01)
        with tracing.span("inventory change") as parent:
            assert parent is not None
            engine.on_event(pool_event("p1"))
        task = asyncio.create_task(engine.run())
        try:
            async with asyncio.timeout(5):
                while not (taken := await store.take("w", limit=1, wait=0.05)):
                    pass
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert engine._traces._taken == {}  # forgotten once written
    finally:
        handle.shutdown()
    assert tracing.ENABLED is False
    events = [s for s in exporter.get_finished_spans() if s.name == "notification event"]
    failed, written = sorted(events, key=lambda s: s.end_time or 0)
    for span in (failed, written):
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.start_time == failed.start_time  # both start when the change was taken
    assert not failed.status.is_ok
    assert written.status.is_unset
    [delivery] = taken
    assert delivery.traceparent is not None
    assert delivery.traceparent.split("-")[2] == format(written.context.span_id, "016x")


def test_deliveries_keep_their_traceparent_in_redis(redis_url: str, redis_prefix: str) -> None:
    parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

    def delivery(subscription_id: str, traceparent: str | None) -> Delivery:
        return Delivery(
            subscription_id=subscription_id,
            notification_id=str(uuid.uuid4()),
            callback="http://127.0.0.1:9/cb",
            body=b"{}",
            event_time=time.time(),
            traceparent=traceparent,
        )

    async def scenario() -> tuple[list[Delivery], list[Delivery]]:
        store = RedisStore.from_url(redis_url, prefix=redis_prefix)
        try:
            await store.enqueue([delivery("with", parent), delivery("without", None)])
            taken = await store.take("w", limit=10, wait=1.0)
            for item in taken:
                await store.dead_letter(item, reason="test")
            dead = [letter.delivery for letter in await store.dead_letters()]
            return taken, dead
        finally:
            await store.aclose()

    taken, dead = asyncio.run(scenario())
    for found in (taken, dead):
        assert {d.subscription_id: d.traceparent for d in found} == {
            "with": parent,
            "without": None,
        }
    # a delivery without one is stored exactly as before the field existed
    with redis.Redis.from_url(redis_url) as client:
        entries = client.xrange(f"{redis_prefix}:dead")
    metas = [orjson.loads(fields[b"meta"]) for _, fields in entries]
    assert {meta["subscription_id"]: "traceparent" in meta for meta in metas} == {
        "with": True,
        "without": False,
    }


# gRPC ---------------------------------------------------------------------------------------


def test_spans_reach_a_grpc_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    import grpc

    collector = Collector()
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_GrpcTraceService(collector), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "netweave-grpc-test")
        with serve_gateway(access_log=False) as gateway:
            assert get(gateway, f"{INV}/resourcePools").status_code == 200
    finally:
        server.stop(grace=None)
    [span] = collector.spans(f"GET {INV}/resourcePools")
    assert span.kind == SERVER
    assert span.resource["service.name"] == "netweave-grpc-test"
