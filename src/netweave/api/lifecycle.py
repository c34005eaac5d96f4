"""The writes of the gateway API: pool and resource lifecycle, and their operations.

``POST /o2ims/v1/resourcePools`` (201 + ``Location``), ``PUT``/``PATCH``/``DELETE
/o2ims/v1/resourcePools/{id}`` (``?force=true`` deletes a pool that still has
resources), ``POST /o2ims/v1/resources`` and ``DELETE /o2ims/v1/resources/{id}`` (202 +
``Location`` of the operation), ``GET /o2ims/v1/operations/{id}``.  The reads of the same
paths are lean routes (:mod:`netweave.api.gateway`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from netweave.inventory.lifecycle import LifecycleService
from netweave.models.common import ProblemDetails
from netweave.models.inventory import ResourcePool
from netweave.models.lifecycle import (
    Operation,
    ResourceCreate,
    ResourcePoolCreate,
    ResourcePoolPatch,
)
from netweave.security.principal import principal_of

PREFIX = "/o2ims/v1"
_JSON = "application/json"
_PROBLEM = {"model": ProblemDetails, "content": {"application/problem+json": {}}}

__all__ = ["PREFIX", "router"]

router = APIRouter(
    prefix=PREFIX,
    tags=["netweave gateway API: lifecycle"],
    responses={
        400: _PROBLEM,
        401: _PROBLEM,
        403: _PROBLEM,
        404: _PROBLEM,
        409: _PROBLEM,
        501: _PROBLEM,
        503: _PROBLEM,
    },
)


def _service(request: Request) -> LifecycleService:
    service: LifecycleService = request.app.state.lifecycle
    return service


def _operation_response(operation: Operation, status: int) -> Response:
    return Response(
        content=operation.model_dump_json(by_alias=True, exclude_none=True),
        status_code=status,
        media_type=_JSON,
        headers={"Location": f"{PREFIX}/operations/{operation.operation_id}"},
    )


@router.post(
    "/resourcePools",
    status_code=201,
    response_model=ResourcePool,
    operation_id="gatewayCreateResourcePool",
    summary="Create a resource pool (a MachineSet, or a ResourcePool object and its nodes)",
)
async def create_pool(request: Request, body: ResourcePoolCreate) -> Response:
    raw = await _service(request).create_pool(body, principal_of(request.scope))
    pool = ResourcePool.model_validate_json(raw)
    return Response(
        content=raw,
        status_code=201,
        media_type=_JSON,
        headers={"Location": f"{PREFIX}/resourcePools/{pool.resource_pool_id}"},
    )


@router.put(
    "/resourcePools/{resourcePoolId}",
    response_model=ResourcePool,
    operation_id="gatewayReplaceResourcePool",
    summary="Replace a pool's description, labels and replicas (other members must not change)",
)
async def replace_pool(request: Request, resourcePoolId: str, body: ResourcePoolCreate) -> Response:
    raw = await _service(request).replace_pool(resourcePoolId, body, principal_of(request.scope))
    return Response(content=raw, media_type=_JSON)


@router.patch(
    "/resourcePools/{resourcePoolId}",
    response_model=ResourcePool,
    operation_id="gatewayPatchResourcePool",
    summary="Change a pool's description, labels or replicas (absent or null: unchanged)",
)
async def patch_pool(request: Request, resourcePoolId: str, body: ResourcePoolPatch) -> Response:
    raw = await _service(request).patch_pool(resourcePoolId, body, principal_of(request.scope))
    return Response(content=raw, media_type=_JSON)


@router.delete(
    "/resourcePools/{resourcePoolId}",
    status_code=204,
    operation_id="gatewayDeleteResourcePool",
    summary="Delete a pool the gateway created (force=true: with its resources)",
)
async def delete_pool(
    request: Request,
    resourcePoolId: str,
    force: Annotated[bool, Query(description="Delete the pool's resources with it.")] = False,
) -> Response:
    await _service(request).delete_pool(resourcePoolId, principal_of(request.scope), force=force)
    return Response(status_code=204)


@router.post(
    "/resources",
    status_code=202,
    response_model=Operation,
    operation_id="gatewayAddResource",
    summary="Add a resource (node) to a MachineSet-backed pool; follow the operation",
)
async def add_resource(request: Request, body: ResourceCreate) -> Response:
    operation = await _service(request).add_resource(
        body.resource_pool_id, principal_of(request.scope)
    )
    return _operation_response(operation, 202)


@router.delete(
    "/resources/{resourceId}",
    status_code=202,
    response_model=Operation,
    operation_id="gatewayRemoveResource",
    summary="Retire a resource: cordon, drain (respecting disruption budgets), remove",
)
async def remove_resource(request: Request, resourceId: str) -> Response:
    operation = await _service(request).remove_resource(resourceId, principal_of(request.scope))
    return _operation_response(operation, 202)


@router.get(
    "/operations/{operationId}",
    response_model=Operation,
    operation_id="gatewayGetOperation",
    summary="The progress and outcome of a long-running write",
)
async def get_operation(request: Request, operationId: str) -> Response:
    operation = await _service(request).operation(operationId, principal_of(request.scope))
    return Response(
        content=operation.model_dump_json(by_alias=True, exclude_none=True), media_type=_JSON
    )
