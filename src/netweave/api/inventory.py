"""The standard O2-IMS infrastructure inventory surface, ``/o2ims-infrastructureInventory``.

Spec-faithful: lists are bare JSON arrays paged with ``nextpage_opaque_marker`` and a
``Link`` header; only the methods the spec defines are routed, so every other method
is answered 405 with ``Allow`` by the problem handlers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from netweave.api.deps import FieldsDep, ListQueryDep, ServiceDep
from netweave.api.responses import NOT_FOUND, PROBLEMS, json_bytes, json_list
from netweave.models.common import APIVersion, APIVersions
from netweave.models.inventory import (
    DeploymentManager,
    LocationInfo,
    ObjectKind,
    OCloudInfo,
    OCloudSiteInfo,
    Resource,
    ResourcePool,
    ResourceType,
)

PREFIX = "/o2ims-infrastructureInventory"
API_VERSION = "1.0.0"

router = APIRouter(prefix=PREFIX, tags=["O2-IMS infrastructure inventory"], responses=PROBLEMS)

PoolId = Annotated[str, Path(description="Identifier of a resource pool (UUID).")]
ResourceIdParam = Annotated[str, Path(description="Identifier of a resource (UUID).")]
TypeId = Annotated[str, Path(description="Identifier of a resource type (UUID).")]
DmId = Annotated[str, Path(description="Identifier of a deployment manager (UUID).")]
LocationId = Annotated[str, Path(description="Global location identifier.")]
SiteId = Annotated[str, Path(description="Identifier of an O-Cloud site (UUID).")]


@router.get(
    "/api_versions",
    response_model=APIVersions,
    response_model_exclude_none=True,
    operation_id="getAllInventoryVersions",
)
async def all_versions() -> APIVersions:
    return APIVersions(uri_prefix=PREFIX, api_versions=[APIVersion(version=API_VERSION)])


@router.get(
    "/v1/api_versions",
    response_model=APIVersions,
    response_model_exclude_none=True,
    operation_id="getMinorInventoryVersions",
)
async def minor_versions() -> APIVersions:
    return APIVersions(uri_prefix=f"{PREFIX}/v1", api_versions=[APIVersion(version=API_VERSION)])


@router.get("/v1", response_model=OCloudInfo, operation_id="getCloudInfo")
async def cloud_info(service: ServiceDep, selection: FieldsDep) -> Response:
    return json_bytes(service.get_ocloud(selection))


# Resource types ----------------------------------------------------------------------


@router.get("/v1/resourceTypes", response_model=list[ResourceType], operation_id="getResourceTypes")
async def list_resource_types(
    request: Request, service: ServiceDep, query: ListQueryDep
) -> Response:
    return json_list(request, service.list(ObjectKind.RESOURCE_TYPE, query))


@router.get(
    "/v1/resourceTypes/{resourceTypeId}",
    response_model=ResourceType,
    responses=NOT_FOUND,
    operation_id="getResourceType",
)
async def get_resource_type(
    resourceTypeId: TypeId, service: ServiceDep, selection: FieldsDep
) -> Response:
    return json_bytes(service.get(ObjectKind.RESOURCE_TYPE, resourceTypeId, selection))


# Resource pools and their resources --------------------------------------------------


@router.get("/v1/resourcePools", response_model=list[ResourcePool], operation_id="getResourcePools")
async def list_resource_pools(
    request: Request, service: ServiceDep, query: ListQueryDep
) -> Response:
    return json_list(request, service.list(ObjectKind.RESOURCE_POOL, query))


@router.get(
    "/v1/resourcePools/{resourcePoolId}",
    response_model=ResourcePool,
    responses=NOT_FOUND,
    operation_id="getResourcePool",
)
async def get_resource_pool(
    resourcePoolId: PoolId, service: ServiceDep, selection: FieldsDep
) -> Response:
    return json_bytes(service.get(ObjectKind.RESOURCE_POOL, resourcePoolId, selection))


@router.get(
    "/v1/resourcePools/{resourcePoolId}/resources",
    response_model=list[Resource],
    responses=NOT_FOUND,
    operation_id="getResources",
)
async def list_resources(
    request: Request, resourcePoolId: PoolId, service: ServiceDep, query: ListQueryDep
) -> Response:
    page = service.list(
        ObjectKind.RESOURCE, query, parent=(ObjectKind.RESOURCE_POOL, resourcePoolId)
    )
    return json_list(request, page)


@router.get(
    "/v1/resourcePools/{resourcePoolId}/resources/{resourceId}",
    response_model=Resource,
    responses=NOT_FOUND,
    operation_id="getResource",
)
async def get_resource(
    resourcePoolId: PoolId, resourceId: ResourceIdParam, service: ServiceDep, selection: FieldsDep
) -> Response:
    body = service.get(
        ObjectKind.RESOURCE,
        resourceId,
        selection,
        parent=(ObjectKind.RESOURCE_POOL, resourcePoolId),
    )
    return json_bytes(body)


# Deployment managers -----------------------------------------------------------------


@router.get(
    "/v1/deploymentManagers",
    response_model=list[DeploymentManager],
    operation_id="getDeploymentManagers",
)
async def list_deployment_managers(
    request: Request, service: ServiceDep, query: ListQueryDep
) -> Response:
    return json_list(request, service.list(ObjectKind.DEPLOYMENT_MANAGER, query))


@router.get(
    "/v1/deploymentManagers/{deploymentManagerId}",
    response_model=DeploymentManager,
    responses=NOT_FOUND,
    operation_id="getDeploymentManager",
)
async def get_deployment_manager(
    deploymentManagerId: DmId, service: ServiceDep, selection: FieldsDep
) -> Response:
    return json_bytes(service.get(ObjectKind.DEPLOYMENT_MANAGER, deploymentManagerId, selection))


# Locations and O-Cloud sites (spec 11) -----------------------------------------------


@router.get("/v1/locations", response_model=list[LocationInfo], operation_id="getLocations")
async def list_locations(request: Request, service: ServiceDep, query: ListQueryDep) -> Response:
    return json_list(request, service.list(ObjectKind.LOCATION, query))


@router.get(
    "/v1/locations/{globalLocationId}",
    response_model=LocationInfo,
    responses=NOT_FOUND,
    operation_id="getLocation",
)
async def get_location(
    globalLocationId: LocationId, service: ServiceDep, selection: FieldsDep
) -> Response:
    return json_bytes(service.get(ObjectKind.LOCATION, globalLocationId, selection))


@router.get("/v1/oCloudSites", response_model=list[OCloudSiteInfo], operation_id="getOCloudSites")
async def list_ocloud_sites(request: Request, service: ServiceDep, query: ListQueryDep) -> Response:
    return json_list(request, service.list(ObjectKind.OCLOUD_SITE, query))


@router.get(
    "/v1/oCloudSites/{oCloudSiteId}",
    response_model=OCloudSiteInfo,
    responses=NOT_FOUND,
    operation_id="getOCloudSite",
)
async def get_ocloud_site(
    oCloudSiteId: SiteId, service: ServiceDep, selection: FieldsDep
) -> Response:
    return json_bytes(service.get(ObjectKind.OCLOUD_SITE, oCloudSiteId, selection))
