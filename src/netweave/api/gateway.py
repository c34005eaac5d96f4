"""The reads of netweave's own API surface, ``/o2ims/v1``.

The same service layer as the standard surface, with the gateway API's envelope: lists
answer ``{"items": [...], "nextMarker": "<marker>" | null}`` (pass the marker back as
``nextpage_opaque_marker``; ``X-Total-Count`` counts every match), and objects answer as
themselves.  Resources are also reachable without their pool (``/o2ims/v1/resources``).
The writes of the same paths (pool and resource lifecycle) are FastAPI routes in
:mod:`netweave.api.lifecycle`; the lean router passes those methods through.
"""

from __future__ import annotations

from netweave.api.inventory import get_handler, list_handler
from netweave.api.lean import LeanRoute
from netweave.models.inventory import MODEL_OF_KIND, ObjectKind

PREFIX = "/o2ims/v1"
TAG = "netweave gateway API: inventory"

__all__ = ["PREFIX", "ROUTES"]


def _routes(
    path: str,
    kind: ObjectKind,
    *,
    id_param: str,
    plural: str,
    singular: str,
    parent: tuple[ObjectKind, str] | None = None,
    list_writes: frozenset[str] = frozenset(),
    item_writes: frozenset[str] = frozenset(),
) -> list[LeanRoute]:
    model = MODEL_OF_KIND[kind]
    return [
        LeanRoute(
            path=path,
            handler=list_handler(kind, parent, envelope="items"),
            operation_id=f"gatewayList{plural}",
            summary=f"List {plural[0].lower() + plural[1:]} (gateway envelope)",
            model=model,
            many=True,
            query="list",
            not_found=parent is not None,
            tag=TAG,
            envelope="items",
            passthrough=list_writes,
        ),
        LeanRoute(
            path=f"{path}/{{{id_param}}}",
            handler=get_handler(kind, id_param, parent),
            operation_id=f"gatewayGet{singular}",
            summary=f"Get one {singular[0].lower() + singular[1:]}",
            model=model,
            query="fields",
            not_found=True,
            tag=TAG,
            passthrough=item_writes,
        ),
    ]


ROUTES: list[LeanRoute] = [
    *_routes(
        f"{PREFIX}/resourcePools",
        ObjectKind.RESOURCE_POOL,
        id_param="resourcePoolId",
        plural="ResourcePools",
        singular="ResourcePool",
        list_writes=frozenset({"POST"}),
        item_writes=frozenset({"PUT", "PATCH", "DELETE"}),
    ),
    # the resources of one pool (read-only here: resources are added through /resources)
    _routes(
        f"{PREFIX}/resourcePools/{{resourcePoolId}}/resources",
        ObjectKind.RESOURCE,
        id_param="resourceId",
        plural="PoolResources",
        singular="PoolResource",
        parent=(ObjectKind.RESOURCE_POOL, "resourcePoolId"),
    )[0],
    *_routes(
        f"{PREFIX}/resources",
        ObjectKind.RESOURCE,
        id_param="resourceId",
        plural="Resources",
        singular="Resource",
        list_writes=frozenset({"POST"}),
        item_writes=frozenset({"DELETE"}),
    ),
    *_routes(
        f"{PREFIX}/resourceTypes",
        ObjectKind.RESOURCE_TYPE,
        id_param="resourceTypeId",
        plural="ResourceTypes",
        singular="ResourceType",
    ),
    *_routes(
        f"{PREFIX}/deploymentManagers",
        ObjectKind.DEPLOYMENT_MANAGER,
        id_param="deploymentManagerId",
        plural="DeploymentManagers",
        singular="DeploymentManager",
    ),
]
