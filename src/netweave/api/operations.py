"""Operations endpoints: liveness, readiness and Prometheus metrics.  No auth, ever."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from netweave.inventory.view import InventoryView
from netweave.observability.metrics import CONTENT_TYPE_LATEST, Metrics

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="getHealth", summary="The process is up.")
async def healthz() -> Response:
    return Response(content=b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="The inventory view is synchronised with the backend (503 and the reason if not).",
)
async def readyz(request: Request) -> Response:
    view: InventoryView = request.app.state.view
    if view.ready:
        return Response(content=b'{"status":"ready"}', media_type="application/json")
    body = orjson.dumps({"status": "not ready", "reason": view.not_ready_reason})
    return Response(
        content=body, status_code=503, media_type="application/json", headers={"Retry-After": "5"}
    )


@router.get("/metrics", operation_id="getMetrics", summary="Prometheus metrics.")
async def metrics(request: Request) -> Response:
    collectors: Metrics = request.app.state.metrics
    return Response(content=collectors.render(), media_type=CONTENT_TYPE_LATEST)
