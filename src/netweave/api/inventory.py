"""The standard O2-IMS infrastructure inventory surface, ``/o2ims-infrastructureInventory``.

Spec-faithful: lists are bare JSON arrays paged with ``nextpage_opaque_marker`` and a
``Link`` header, and every method other than GET is answered 405 with ``Allow``.  The
routes are served by the lean router (see :mod:`netweave.api.lean` for why); each
handler is one call into the inventory service.
"""

from __future__ import annotations

from typing import Literal

import orjson

from netweave.api.lean import LeanHandler, LeanRequest, LeanResponse, LeanRoute
from netweave.api.params import field_params, list_query
from netweave.inventory.service import InventoryService
from netweave.models.common import APIVersion, APIVersions
from netweave.models.inventory import MODEL_OF_KIND, ObjectKind, OCloudInfo
from netweave.security.principal import tenant_of

PREFIX = "/o2ims-infrastructureInventory"
V1 = f"{PREFIX}/v1"
API_VERSION = "1.0.0"
TAG = "O2-IMS infrastructure inventory"

__all__ = ["PREFIX", "ROUTES"]


def inventory_service(request: LeanRequest) -> InventoryService:
    service: InventoryService = request.state.inventory
    return service


def _versions_handler(uri_prefix: str) -> LeanHandler:
    versions = APIVersions(uri_prefix=uri_prefix, api_versions=[APIVersion(version=API_VERSION)])
    body = versions.model_dump_json(by_alias=True, exclude_none=True).encode()

    async def handler(_: LeanRequest) -> LeanResponse:
        return LeanResponse(body=body)

    return handler


async def _cloud_info(request: LeanRequest) -> LeanResponse:
    return LeanResponse(body=inventory_service(request).get_ocloud(field_params(request.query)))


def list_handler(
    kind: ObjectKind,
    parent: tuple[ObjectKind, str] | None = None,
    *,
    envelope: Literal["array", "items"] = "array",
) -> LeanHandler:
    """A list of ``kind``; ``parent`` names the kind and path parameter of a parent.

    ``array``: the standard surface's bare array, the next page in ``Link``; ``items``: the
    gateway API's ``{"items": [...], "nextMarker": ...}``.  Both count in ``X-Total-Count``.
    """

    async def handler(request: LeanRequest) -> LeanResponse:
        parent_ref = (parent[0], request.path_params[parent[1]]) if parent else None
        page = inventory_service(request).list(
            kind, list_query(request.query), parent=parent_ref, tenant=tenant_of(request.scope)
        )
        headers = [("X-Total-Count", str(page.total))]
        if envelope == "items":
            marker = orjson.dumps(page.next_marker)
            body = b'{"items":[' + page.items + b'],"nextMarker":' + marker + b"}"
            return LeanResponse(body=body, headers=headers)
        if page.next_marker is not None:
            next_url = request.url_with(nextpage_opaque_marker=page.next_marker)
            headers.append(("Link", f'<{next_url}>; rel="next"'))
        return LeanResponse(body=b"[" + page.items + b"]", headers=headers)

    return handler


def get_handler(
    kind: ObjectKind, id_param: str, parent: tuple[ObjectKind, str] | None = None
) -> LeanHandler:
    async def handler(request: LeanRequest) -> LeanResponse:
        parent_ref = (parent[0], request.path_params[parent[1]]) if parent else None
        body = inventory_service(request).get(
            kind,
            request.path_params[id_param],
            field_params(request.query),
            parent=parent_ref,
            tenant=tenant_of(request.scope),
        )
        return LeanResponse(body=body)

    return handler


def _collection(
    path: str,
    kind: ObjectKind,
    *,
    id_param: str,
    plural: str,
    singular: str,
    parent: tuple[ObjectKind, str] | None = None,
) -> list[LeanRoute]:
    """The list route and the single-object route of one collection."""
    model = MODEL_OF_KIND[kind]
    return [
        LeanRoute(
            path=path,
            handler=list_handler(kind, parent),
            operation_id=f"get{plural}",
            summary=f"List {plural[0].lower() + plural[1:]}",
            model=model,
            many=True,
            query="list",
            not_found=parent is not None,
            tag=TAG,
        ),
        LeanRoute(
            path=f"{path}/{{{id_param}}}",
            handler=get_handler(kind, id_param, parent),
            operation_id=f"get{singular}",
            summary=f"Get one {singular[0].lower() + singular[1:]}",
            model=model,
            query="fields",
            not_found=True,
            tag=TAG,
        ),
    ]


POOL_PARENT = (ObjectKind.RESOURCE_POOL, "resourcePoolId")

ROUTES: list[LeanRoute] = [
    LeanRoute(
        path=f"{PREFIX}/api_versions",
        handler=_versions_handler(PREFIX),
        operation_id="getAllInventoryVersions",
        summary="All major versions of the inventory API",
        model=APIVersions,
        tag=TAG,
    ),
    LeanRoute(
        path=f"{V1}/api_versions",
        handler=_versions_handler(V1),
        operation_id="getMinorInventoryVersions",
        summary="The versions within inventory API v1",
        model=APIVersions,
        tag=TAG,
    ),
    LeanRoute(
        path=V1,
        handler=_cloud_info,
        operation_id="getCloudInfo",
        summary="Information about this O-Cloud",
        model=OCloudInfo,
        query="fields",
        tag=TAG,
    ),
    *_collection(
        f"{V1}/resourceTypes",
        ObjectKind.RESOURCE_TYPE,
        id_param="resourceTypeId",
        plural="ResourceTypes",
        singular="ResourceType",
    ),
    *_collection(
        f"{V1}/resourcePools",
        ObjectKind.RESOURCE_POOL,
        id_param="resourcePoolId",
        plural="ResourcePools",
        singular="ResourcePool",
    ),
    *_collection(
        f"{V1}/resourcePools/{{resourcePoolId}}/resources",
        ObjectKind.RESOURCE,
        id_param="resourceId",
        plural="Resources",
        singular="Resource",
        parent=POOL_PARENT,
    ),
    *_collection(
        f"{V1}/deploymentManagers",
        ObjectKind.DEPLOYMENT_MANAGER,
        id_param="deploymentManagerId",
        plural="DeploymentManagers",
        singular="DeploymentManager",
    ),
    *_collection(
        f"{V1}/locations",
        ObjectKind.LOCATION,
        id_param="globalLocationId",
        plural="Locations",
        singular="Location",
    ),
    *_collection(
        f"{V1}/oCloudSites",
        ObjectKind.OCLOUD_SITE,
        id_param="oCloudSiteId",
        plural="OCloudSites",
        singular="OCloudSite",
    ),
]
