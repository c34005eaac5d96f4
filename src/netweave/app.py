"""The application factory: ``create_app(settings)`` is the only composition root.

Everything with a lifetime (the backend adapter, the inventory view and its watch
task, the service) is built in the lifespan and kept on ``app.state``; nothing lives
at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.routing import APIRoute

from netweave import __version__
from netweave.adapters.registry import build_adapter
from netweave.api import inventory, operations
from netweave.api.middleware import RequestContextMiddleware
from netweave.api.problems import install_problem_handlers
from netweave.config import Settings
from netweave.inventory.service import InventoryService
from netweave.inventory.view import InventoryView
from netweave.models.inventory import OCloudInfo
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics
from netweave.query import PageMarkers

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
        app.state.view = view
        app.state.inventory = InventoryService(
            view,
            ocloud=_ocloud_info(settings),
            markers=PageMarkers(settings.paging_key(), ttl_seconds=settings.paging_marker_ttl),
            page_size=settings.max_page_size,
            metrics=metrics,
        )
        watcher = asyncio.create_task(view.run(), name="inventory-view")
        if await view.wait_ready(_FIRST_SYNC_WAIT):
            _log.info("inventory view synchronised", backend=settings.backend)
        else:
            _log.warning("inventory view not synchronised yet", reason=view.not_ready_reason)
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await adapter.aclose()
            _log.info("netweave stopped")

    app = FastAPI(
        title="netweave O2-IMS gateway",
        version=__version__,
        summary="The O-RAN O2-IMS API in front of Kubernetes-based O-Clouds.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.metrics = metrics
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(operations.router)
    app.include_router(inventory.router)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        access_log=settings.access_log,
    )
    return app


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
