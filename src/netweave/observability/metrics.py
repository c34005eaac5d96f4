"""Prometheus metrics of one gateway instance.

All collectors live in a :class:`Metrics` object with its own registry, built by the
app factory, so two apps in one process (tests) never share counters.  Names carry
the ``netweave_`` prefix; ``docs/metrics.md`` is the catalogue.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest, start_http_server

__all__ = ["AUTH_FAILURE_REASONS", "CONTENT_TYPE_LATEST", "Metrics"]

#: the values of the ``reason`` label of ``netweave_auth_failures_total`` (see api/access.py)
AUTH_FAILURE_REASONS = (
    "missing_credentials",
    "invalid_token",
    "invalid_certificate",
    "forbidden",
    "tenant_refused",
    "rate_limited",
    "unavailable",
)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self, *, version: str, backend: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.build_info = Info(
            "netweave_build",
            "Version, Python version and backend of this gateway (the value is always 1).",
            registry=self.registry,
        )
        self.build_info.info(
            {"version": version, "python": platform.python_version(), "backend": backend}
        )
        self.http_requests = Counter(
            "netweave_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "netweave_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.view_objects = Gauge(
            "netweave_inventory_view_objects",
            "Objects held in the inventory view, by backend and kind.",
            ["backend", "kind"],
            registry=self.registry,
        )
        self.inventory_events = Counter(
            "netweave_inventory_events",
            "Inventory change events applied to the view, by kind and event type.",
            ["kind", "type"],
            registry=self.registry,
        )
        self.view_resyncs = Counter(
            "netweave_inventory_view_resyncs",
            "Full snapshots the view received from its backend (first sync included).",
            ["backend"],
            registry=self.registry,
        )
        self.view_ready = Gauge(
            "netweave_inventory_view_ready",
            "1 once the inventory view has synchronised with its backend (what /readyz "
            "reports), else 0.",
            ["backend"],
            registry=self.registry,
        )
        self.watch_up = Gauge(
            "netweave_backend_watch_up",
            "1 while the view's watch stream of the backend flows; 0 from a failure or the "
            "end of the stream until the next snapshot arrives.",
            ["backend"],
            registry=self.registry,
        )
        self.watch_items = Counter(
            "netweave_backend_watch_items",
            "Items the backend's watch stream delivered to the view, by kind (snapshot, event).",
            ["backend", "kind"],
            registry=self.registry,
        )
        self.watch_errors = Counter(
            "netweave_backend_watch_errors",
            "Failures of the backend's watch stream, by kind (unavailable, rejected, unexpected).",
            ["backend", "kind"],
            registry=self.registry,
        )
        self.watch_restarts = Counter(
            "netweave_backend_watch_restarts",
            "Restarts of the view's watch, by cause: re-subscribed after a failure (error) or "
            "after the stream ended (ended), or a fresh snapshot mid-stream (resync).",
            ["backend", "cause"],
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "netweave_inventory_cache_lookups",
            "List responses served from the rendered-page cache (hit) or rendered (miss).",
            ["result"],
            registry=self.registry,
        )

        from netweave.notifications.delivery import DeliveryMetrics

        self.delivery = DeliveryMetrics(self.registry)
        self.subscriptions = Gauge(
            "netweave_subscriptions",
            "Inventory subscriptions in the store, by tenant (empty for platform ones), as the "
            "emitter replica's notification engine last loaded them.",
            ["tenant"],
            registry=self.registry,
        )
        self.notifications_enqueued = Counter(
            "netweave_notifications_enqueued",
            "Notifications written to the outbox (one per matching subscription and change).",
            registry=self.registry,
        )
        self.notifications_dropped = Counter(
            "netweave_notifications_dropped",
            "Changes dropped because the notification buffer was full while the store was "
            "unavailable.",
            registry=self.registry,
        )
        self.emitter = Gauge(
            "netweave_notification_emitter",
            "1 while this replica holds the emitter lease and writes notifications.",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "netweave_auth_failures",
            f"Requests the access checks refused, by reason ({', '.join(AUTH_FAILURE_REASONS)}).",
            ["reason"],
            registry=self.registry,
        )
        for reason in AUTH_FAILURE_REASONS:  # every reason has a series from the start
            self.auth_failures.labels(reason)
        # alarms: ``definition`` is the alarm name (a backend's catalogue, bounded) and
        # ``severity`` critical, major, minor, warning or indeterminate (the severity the
        # alarm had); the counters count what this replica recorded
        self.alarms_raised = Counter(
            "netweave_alarms_raised",
            "Alarms raised (NEW), by alarm name and severity.",
            ["definition", "severity"],
            registry=self.registry,
        )
        self.alarms_cleared = Counter(
            "netweave_alarms_cleared",
            "Alarms cleared, by the backend or an operator, by alarm name and severity.",
            ["definition", "severity"],
            registry=self.registry,
        )
        self.alarms_acknowledged = Counter(
            "netweave_alarms_acknowledged",
            "Alarms acknowledged, by alarm name and severity.",
            ["definition", "severity"],
            registry=self.registry,
        )
        self.alarms_active = Gauge(
            "netweave_alarms_active",
            "Active alarms (all replicas, from the store), by severity.",
            ["severity"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> Callable[[], None]:
        """Serve this registry on ``host:port`` too (``NETWEAVE_METRICS_PORT``), with
        prometheus_client's own HTTP server in a thread, so scrapes neither queue behind API
        traffic nor need the API port opened to the monitoring network.  Plain HTTP, no
        auth, like ``/metrics`` on the main port.  Returns the blocking function that stops
        it; an unusable port raises ``OSError`` here, failing start-up loudly."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return stop
