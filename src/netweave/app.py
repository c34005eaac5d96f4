"""The application factory: ``create_app(settings)`` is the only composition root.

Everything with a lifetime (the backend adapter, the inventory view and its watch
task, the service) is built in the lifespan and kept on ``app.state``; nothing lives
at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from netweave import __version__
from netweave.adapters.registry import build_adapter
from netweave.alarms.wiring import build_alarms
from netweave.api import (
    audit,
    batch,
    deliveries,
    gateway,
    gateway_subscriptions,
    inventory,
    monitoring,
    operations,
    subscriptions,
    tenancy,
)
from netweave.api import lifecycle as lifecycle_api
from netweave.api.access import AccessMiddleware
from netweave.api.lean import LeanRouter, openapi_paths
from netweave.api.middleware import RequestContextMiddleware
from netweave.api.problems import install_problem_handlers
from netweave.config import Settings
from netweave.inventory.lifecycle import LifecycleService
from netweave.inventory.service import InventoryService
from netweave.inventory.view import InventoryView
from netweave.models.inventory import OCloudInfo
from netweave.notifications.callbacks import CallbackPolicy
from netweave.notifications.clients import OriginClients
from netweave.notifications.delivery import DeliveryService
from netweave.notifications.engine import NotificationEngine
from netweave.notifications.retry import RetryPolicy
from netweave.notifications.subscriptions import SubscriptionService
from netweave.observability import tracing
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics
from netweave.query import PageMarkers
from netweave.security.authentication import parse_networks
from netweave.security.setup import build_security
from netweave.security.visibility import TenantVisibility
from netweave.store.factory import build_operation_store, build_store

__all__ = ["create_app"]

_log = get_logger("netweave.app")

#: how long start-up waits for the first sync before serving (readiness says the rest)
_FIRST_SYNC_WAIT = 10.0


def _operation_id(route: APIRoute) -> str:
    return route.operation_id or route.name


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics(version=__version__, backend=settings.backend)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        adapter = build_adapter(settings)
        view = InventoryView(adapter, metrics=metrics)
        visibility = TenantVisibility(view)
        view.add_listener(visibility.on_event)
        markers = PageMarkers(settings.paging_key(), ttl_seconds=settings.paging_marker_ttl)
        store = build_store(settings)
        security = await build_security(settings, store, markers=markers)
        app.state.access = security.access
        app.state.tenancy = security.tenancy
        app.state.audit = security.audit

        def http_client() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                timeout=httpx.Timeout(settings.delivery_timeout),
                limits=httpx.Limits(max_connections=settings.delivery_concurrency),
                headers={"User-Agent": f"netweave/{__version__}"},
            )

        http = http_client()  # callback checks
        delivery_clients = OriginClients(http_client)
        app.state.loop = asyncio.get_running_loop()  # for tools driving the app from threads
        app.state.view = view
        app.state.store = store
        app.state.inventory = InventoryService(
            view,
            ocloud=_ocloud_info(settings),
            markers=markers,
            page_size=settings.max_page_size,
            metrics=metrics,
            visibility=visibility,
        )
        app.state.subscriptions = SubscriptionService(
            store,
            policy=CallbackPolicy.from_allowlist(
                settings.callback_allowlist.split(","),
                verify=settings.callback_verify,
                verify_timeout=settings.callback_verify_timeout,
            ),
            http=http,
            markers=markers,
            page_size=settings.max_page_size,
            max_subscriptions=security.max_subscriptions,
        )
        engine = NotificationEngine(
            store,
            api_root=settings.effective_service_uri,
            replica=settings.effective_replica_id,
            lease_ttl=settings.emitter_lease_ttl,
            metrics=metrics,
            visible=visibility.sees_event,
        )
        app.state.notifications = engine
        app.state.lifecycle = lifecycle = LifecycleService(
            adapter,
            view,
            visibility,
            build_operation_store(store, settings),
            ocloud_id=settings.effective_ocloud_id,
            max_resource_pools=security.quotas.max_resource_pools,
            tenant_exists=security.quotas.tenant_exists,
        )
        view.add_listener(engine.on_event)
        alarms = build_alarms(
            settings,
            adapter=adapter,
            view=view,
            visibility=visibility,
            store=store,
            markers=markers,
            http=http,
            max_subscriptions=security.max_subscriptions,
            metrics=metrics,
        )
        alarms.publish(app.state)
        global_key = settings.notification_key()
        delivery = DeliveryService(
            store,
            http=delivery_clients,
            policy=RetryPolicy(
                max_attempts=settings.delivery_max_attempts,
                max_age=settings.delivery_max_age,
                timeout=settings.delivery_timeout,
            ),
            worker_id=settings.effective_replica_id,
            concurrency=settings.delivery_concurrency,
            secret_for=lambda _subscription_id: global_key,
            metrics=metrics.delivery,
        )
        background = [
            asyncio.create_task(engine.run(), name="notification-engine"),
            asyncio.create_task(delivery.run(), name="delivery"),
        ]
        watcher = asyncio.create_task(view.run(), name="inventory-view")
        if await view.wait_ready(_FIRST_SYNC_WAIT):
            _log.info("inventory view synchronised", backend=settings.backend)
        else:
            _log.warning("inventory view not synchronised yet", reason=view.not_ready_reason)
        background.extend(alarms.start())  # after the first sync: alarms find their pools
        stop_metrics: Callable[[], None] | None = None
        try:
            if settings.metrics_port is not None:
                stop_metrics = metrics.serve(settings.host, settings.metrics_port)
            yield
        finally:
            if stop_metrics is not None:
                await asyncio.to_thread(stop_metrics)
            watcher.cancel()
            await lifecycle.aclose()
            await delivery.aclose()
            for task in [watcher, *background]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await adapter.aclose()
            await http.aclose()
            await delivery_clients.aclose()
            await security.aclose()
            await store.aclose()
            _log.info("netweave stopped")

    app = GatewayApp(
        title="netweave O2-IMS gateway",
        version=__version__,
        summary="The O-RAN O2-IMS API in front of Kubernetes-based O-Clouds.",
        # OTEL_* variables turn tracing on (docs/tracing.md); it outlives everything else
        lifespan=tracing.with_tracing(lifespan, environ=os.environ, service_version=__version__),
        generate_unique_id_function=_operation_id,
        # FastAPI's built-in OpenTelemetry hooks check the providers on every request;
        # netweave's tracing is its own (observability/), so they stay off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.metrics = metrics
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(operations.router)
    app.include_router(subscriptions.router)
    app.include_router(deliveries.router)
    app.include_router(tenancy.router)
    app.include_router(lifecycle_api.router)
    app.include_router(batch.router)
    app.include_router(gateway_subscriptions.router)
    app.include_router(audit.router)
    app.include_router(monitoring.router)
    lean_routes = [*inventory.ROUTES, *gateway.ROUTES, *monitoring.INVENTORY_ROUTES]
    _document_lean_routes(app, lean_routes)
    app.outer_middleware = [
        Middleware(
            RequestContextMiddleware,
            metrics=metrics,
            max_body_bytes=settings.max_body_bytes,
            access_log=settings.access_log,
            security_headers=settings.security_headers,
            tls=settings.tls_cert_file is not None,
            trusted_proxies=parse_networks(settings.trusted_proxies),
        ),
        Middleware(AccessMiddleware),
        Middleware(LeanRouter, routes=lean_routes),
    ]
    return app


class GatewayApp(FastAPI):
    """FastAPI with netweave's own middleware outside FastAPI's stack.

    ``outer_middleware`` (outermost first) wraps the whole stack FastAPI builds, so the
    request context (ids, metrics, 413/415, the leak-free 500) covers every request, and
    the lean router answers its hot reads without passing through FastAPI's layers.
    """

    outer_middleware: list[Middleware]

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for cls, args, kwargs in reversed(getattr(self, "outer_middleware", [])):
            app = cls(app, *args, **kwargs)
        return app


def _document_lean_routes(app: FastAPI, routes: list[Any]) -> None:
    """Make ``/openapi.json`` describe the lean routes next to the FastAPI ones."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            paths, definitions = openapi_paths(routes)
            for path, operations in schema.get("paths", {}).items():
                # a path may have its reads on the lean router and its writes on FastAPI
                paths[path] = {**paths.get(path, {}), **operations}
            schema["paths"] = paths
            schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _ocloud_info(settings: Settings) -> OCloudInfo:
    global_id = settings.effective_global_cloud_id
    return OCloudInfo(
        o_cloud_id=settings.effective_ocloud_id,
        global_cloud_id=global_id,
        globalcloud_id=global_id,
        name=settings.ocloud_name,
        description=settings.ocloud_description,
        service_uri=settings.effective_service_uri,
        extensions={"backend": settings.backend, "gateway": "netweave", "version": __version__},
    )
