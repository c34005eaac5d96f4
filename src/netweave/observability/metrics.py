"""Prometheus metrics of one gateway instance.

All collectors live in a :class:`Metrics` object with its own registry, built by the
app factory, so two apps in one process (tests) never share counters.  Names carry
the ``netweave_`` prefix; ``docs/metrics.md`` is the catalogue.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self, *, version: str, backend: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.build_info = Info(
            "netweave_build", "Version and backend of this gateway.", registry=self.registry
        )
        self.build_info.info({"version": version, "backend": backend})
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
            "Inventory subscriptions in the store.",
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
