"""Pool and resource lifecycle on a cluster: which object a write goes to, and in what order.

* Pools are MachineSets where the cluster serves cluster-api (:mod:`.machinesets`), else
  ``ResourcePool`` objects with labelled nodes (:mod:`.resourcepools`).  Pools of
  labelled nodes nobody created through netweave, the default pool and MachineSets
  without netweave's ``managed-by`` annotation are read-only: changing or deleting them
  is a ``ConflictError`` saying so.
* Adding a resource scales a MachineSet by one; the node shows up in the inventory when
  the provider has built the machine.  Other pools have no machine API to ask.
* Removing a resource cordons the node, drains it (:mod:`.drain`), then deletes its
  cluster-api Machine (marked, its MachineSet scaled down so it is not replaced) or else
  the Node object.  When a step fails, the node is uncordoned (if this call cordoned it)
  and stays.

Pool ids are located in the adapter's watch caches first (what the inventory shows), then,
when absent there (a write right after another), in fresh lists; the object found is
read again before it is changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx

from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.drain import Drainer
from netweave.adapters.kubernetes.machinesets import MachineSetWriter
from netweave.adapters.kubernetes.pools import Catalog, PoolRef, locate_pool, require_managed
from netweave.adapters.kubernetes.resourcepools import ResourcePoolWriter
from netweave.adapters.kubernetes.rest import (
    CAPI,
    NODES,
    RESOURCE_POOLS,
    KubeWriter,
    machineset_path,
    resource_pool_path,
)
from netweave.adapters.lifecycle import PoolChange, PoolRequest, Progress
from netweave.errors import BackendError, ConflictError, InvalidRequestError, NotFoundError
from netweave.observability.logging import get_logger

__all__ = ["ClusterState", "Writes"]

JsonMap = Mapping[str, Any]

_log = get_logger("netweave.kubernetes.writes")


@dataclass(frozen=True, slots=True)
class ClusterState:
    """What the adapter's watches hold when a write starts."""

    catalog: Catalog
    #: the cluster serves cluster-api MachineSets
    capi: bool
    #: the cluster serves netweave's ResourcePool CRD
    resource_pools: bool
    #: names of the pools the inventory shows
    pool_names: frozenset[str]


class Writes:
    """The writes of one cluster, over the adapter's HTTP client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        ctx: m.MappingContext,
        *,
        machineset_template: str | None,
        drain_timeout: float,
        drain_grace_period: int | None,
    ) -> None:
        self._kube = KubeWriter(http)
        self._ctx = ctx
        self._machinesets = MachineSetWriter(self._kube, ctx, machineset_template)
        self._resource_pools = ResourcePoolWriter(self._kube, ctx)
        self._drainer = Drainer(self._kube, timeout=drain_timeout, grace_period=drain_grace_period)

    # Pools ------------------------------------------------------------------------------

    async def create_pool(self, request: PoolRequest, state: ClusterState) -> str:
        if request.name == self._ctx.default_pool_name:
            raise InvalidRequestError(
                f"{request.name!r} is the name of the default pool (the nodes in no pool)"
            )
        if request.name in state.pool_names:
            raise ConflictError(f"a resource pool named {request.name} already exists")
        if state.capi:
            ms = await self._machinesets.create(request)
            pool_id = m.machineset_pool_id(ms, self._ctx)
        elif state.resource_pools:
            obj = await self._resource_pools.create(request)
            pool_id = m.resource_pool_object_id(obj, self._ctx)
        else:
            raise BackendError(
                "the cluster serves neither cluster-api MachineSets nor the ResourcePool CRD "
                "(resourcepools.o2ims.oran.org): apply deploy/crds/ and restart the gateway"
            )
        _log.info("resource pool created", pool=request.name, resource_pool_id=pool_id)
        return pool_id

    async def update_pool(self, pool_id: str, change: PoolChange, state: ClusterState) -> None:
        ref = await self._locate(pool_id, state)
        if ref.source == "MachineSet" and ref.obj is not None:
            await self._machinesets.update(ref.obj, change)
        elif ref.source == "ResourcePool" and ref.obj is not None:
            await self._resource_pools.update(ref.obj, change)
        else:
            raise _unmanaged(ref, pool_id)
        _log.info("resource pool updated", resource_pool_id=pool_id)

    async def delete_pool(self, pool_id: str, *, force: bool, state: ClusterState) -> None:
        ref = await self._locate(pool_id, state)
        if ref.source == "MachineSet" and ref.obj is not None:
            namespace, name = m.machineset_key(ref.obj)
            require_managed(ref.obj, f"MachineSet {namespace}/{name}")
            fresh = await self._fresh_catalog(state)
            members = [
                node
                for node in fresh.nodes
                if m.pool_id_for_node(node, self._ctx, {(namespace, name): ref.obj}) == pool_id
            ]
            if members and not force:
                raise ConflictError(
                    f"{ref.describe(pool_id)} still has {len(members)} node(s); delete with "
                    "force to delete its machines with it"
                )
            await self._machinesets.delete(ref.obj)
        elif ref.source == "ResourcePool" and ref.obj is not None:
            await self._resource_pools.delete(ref.obj, force=force)
        else:
            raise _unmanaged(ref, pool_id)
        _log.info("resource pool deleted", resource_pool_id=pool_id, force=force)

    # Resources --------------------------------------------------------------------------

    async def add_resource(self, pool_id: str, progress: Progress, state: ClusterState) -> None:
        ref = await self._locate(pool_id, state)
        if ref.source != "MachineSet" or ref.obj is None:
            raise InvalidRequestError(
                f"pool {pool_id} is not backed by a MachineSet: only cluster-api can add a "
                "machine to a pool (label a node into the pool instead)"
            )
        namespace, name = m.machineset_key(ref.obj)
        replicas = await self._machinesets.scale_by(namespace, name, 1)
        progress(f"scaled MachineSet {namespace}/{name} to {replicas} replicas")
        _log.info("resource added", resource_pool_id=pool_id, replicas=replicas)

    async def remove_resource(
        self, resource_id: str, progress: Progress, state: ClusterState
    ) -> None:
        node = await self._find_node(resource_id, state)
        name = str(node["metadata"]["name"])
        cordoned = await self._drainer.cordon(name)
        progress(f"cordoned node {name}" if cordoned else f"node {name} was already cordoned")
        try:
            await self._drainer.drain(name, progress)
            current = await self._kube.get(f"{NODES}/{name}", what=f"node {name}")
            if not (state.capi and await self._machinesets.retire_machine(current, progress)):
                await self._kube.send("DELETE", f"{NODES}/{name}", what=f"node {name}")
                progress(f"deleted node {name}")
        except BaseException:
            if cordoned:
                with contextlib.suppress(Exception):
                    await self._drainer.uncordon(name)
                    progress(f"uncordoned node {name}")
            raise
        _log.info("resource removed", resource_id=resource_id, node=name)

    # Finding objects --------------------------------------------------------------------

    async def _locate(self, pool_id: str, state: ClusterState) -> PoolRef:
        ref = locate_pool(pool_id, state.catalog, self._ctx) or locate_pool(
            pool_id, await self._fresh_catalog(state), self._ctx
        )
        if ref is None:
            raise NotFoundError(f"resource pool {pool_id} not found")
        if ref.obj is None:
            return ref
        if ref.source == "MachineSet":
            path = machineset_path(*m.machineset_key(ref.obj))
        else:
            path = resource_pool_path(ref.name)
        current = await self._kube.get(path, what=f"resource pool {pool_id}")
        return PoolRef(ref.source, ref.name, current)

    async def _fresh_catalog(self, state: ClusterState) -> Catalog:
        return Catalog(
            nodes=await self._kube.list(NODES, what="nodes"),
            machinesets=(
                await self._kube.list(f"{CAPI}/machinesets", what="MachineSets")
                if state.capi
                else ()
            ),
            resource_pools=(
                await self._kube.list(RESOURCE_POOLS, what="ResourcePools")
                if state.resource_pools
                else ()
            ),
        )

    async def _find_node(self, resource_id: str, state: ClusterState) -> JsonMap:
        for nodes in (state.catalog.nodes, None):
            if nodes is None:
                nodes = await self._kube.list(NODES, what="nodes")
            for node in nodes:
                if m.node_resource_id(node, self._ctx) == resource_id:
                    return node
        raise NotFoundError(f"resource {resource_id} not found")


def _unmanaged(ref: PoolRef, pool_id: str) -> ConflictError:
    return ConflictError(
        f"{ref.describe(pool_id)} is not managed by netweave: it is made of nodes labelled "
        "outside netweave (or of no label: the default pool); netweave changes and deletes "
        "only the pools it created"
    )
