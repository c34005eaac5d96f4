"""The gateway's writes on the simulated O-Cloud: resource pool and resource lifecycle.

:class:`SimulatedWrites` implements the rules of :mod:`netweave.adapters.lifecycle` on a
:class:`~netweave.adapters.simulated.state.SimulatedOCloud`.  Every method first checks
everything that can make it fail and only then changes the state, with no ``await``
anywhere, so a write is all-or-nothing and churn never sees half of one.  It returns the
events the change caused, in order, for the adapter to publish like churn's:

* a new pool: the pool's CREATE, the MODIFY of its site (which lists its pools), a
  CREATE per node, the deployment manager's MODIFY (its capacity);
* a pool update: the pool's MODIFY, a CREATE or DELETE per node added or removed and
  the deployment manager's MODIFY, a MODIFY per remaining node whose labels changed;
* a pool deletion: a DELETE per node (forced), the deployment manager's MODIFY, the
  pool's DELETE, the site's MODIFY;
* a resource added: the pool's MODIFY (``replicas``), the node's CREATE, the deployment
  manager's MODIFY; removed: the node's MODIFY (cordoned), its DELETE, the pool's
  MODIFY, the deployment manager's MODIFY.

Disruption budgets are modelled on the built-in pools: their workloads (the etcd
quorum on the control plane, Ceph OSD replicas on storage, two replicas of every RAN and
core function elsewhere) need at least the pool's ``min_nodes`` nodes, so draining a
node (``remove_resource``) or scaling ``replicas`` below that is a ``ConflictError``
that leaves everything in place; only a forced pool deletion overrides it.  Pools created
through the gateway have no such budget.

A pool's ``labels`` are its node template: every node of the pool carries them, a label
update relabels the pool's nodes, and the pool's taints are set on the nodes it creates.
``replicas`` in a pool's extensions is the size the last write asked for; churn, which
adds and retires nodes of the built-in pools by itself, does not change it.
"""

from __future__ import annotations

import dataclasses

from netweave.adapters.base import InventoryEvent
from netweave.adapters.lifecycle import POOL_NAME, PoolChange, PoolRequest, Progress
from netweave.adapters.simulated.catalog import PoolSpec
from netweave.adapters.simulated.nodes import cordoned, workload_count
from netweave.adapters.simulated.pools import (
    choose_hardware,
    choose_site,
    created_pool,
    free_subnet,
    spec_for_request,
)
from netweave.adapters.simulated.state import SimulatedOCloud
from netweave.errors import ConflictError, InvalidRequestError, NotFoundError
from netweave.models.inventory import InventoryModel, Resource, ResourcePool

__all__ = ["MAX_REPLICAS", "SimulatedWrites"]

MAX_REPLICAS = 100  #: the most nodes a pool may have through writes


class SimulatedWrites:
    """Pool and resource writes on one simulated O-Cloud; each returns its events."""

    def __init__(self, cloud: SimulatedOCloud) -> None:
        self._cloud = cloud

    def create_pool(self, request: PoolRequest) -> tuple[str, list[InventoryEvent]]:
        """Create the pool and its ``replicas`` nodes; its id and the events."""
        if not POOL_NAME.fullmatch(request.name):
            raise InvalidRequestError(f"{request.name!r} is not a valid pool name (a DNS label)")
        if self._cloud.pool_named(request.name) is not None:
            raise ConflictError(f"a resource pool named {request.name} already exists")
        replicas = _checked_replicas(0 if request.replicas is None else request.replicas)
        hardware = choose_hardware(request.instance_type)
        site, placed = choose_site(request.global_location_id)
        subnet = free_subnet(site, self._cloud.pool_specs().values())
        spec = spec_for_request(request, site=site, hardware=hardware, subnet=subnet)
        pool = created_pool(
            self._cloud.ocloud_id, request, spec, site=site, placed=placed, replicas=replicas
        )
        events = self._cloud.insert_pool(spec, pool)
        events += self._scale(pool.resource_pool_id, replicas)
        return pool.resource_pool_id, events

    def update_pool(self, pool_id: str, change: PoolChange) -> list[InventoryEvent]:
        """Change description, labels (replaced) and/or size; nothing changed, no events."""
        pool, spec = self._pool(pool_id)
        size = len(self._cloud.pool_nodes(pool_id))
        target = size if change.replicas is None else _checked_replicas(change.replicas)
        if target < size:
            _keep_budget(spec, target, action=f"scaling pool {pool.name} to {target} nodes")
        update: dict[str, object] = {}
        extensions = dict(pool.extensions)
        if change.description is not None:
            update["description"] = change.description
            spec = dataclasses.replace(spec, description=change.description)
        relabel = change.labels is not None and dict(change.labels) != dict(spec.labels)
        if change.labels is not None:
            extensions["labels"] = dict(change.labels)
            spec = dataclasses.replace(spec, labels=dict(change.labels))
        if change.replicas is not None:
            extensions["replicas"] = target
        update["extensions"] = extensions
        events = self._cloud.replace_pool(pool.model_copy(update=update), spec)
        events += self._scale(pool_id, target)  # new nodes get the new labels already
        if relabel:
            events += self._cloud.relabel_nodes(pool_id)
        return events

    def delete_pool(self, pool_id: str, *, force: bool) -> list[InventoryEvent]:
        """Delete the pool; one with nodes only with ``force``, which removes them first."""
        pool, _ = self._pool(pool_id)
        nodes = self._cloud.pool_nodes(pool_id)
        if nodes and not force:
            raise ConflictError(
                f"resource pool {pool.name} still has {len(nodes)} resources; remove them "
                "first or delete the pool with force"
            )
        events = [self._cloud.drop_node(node) for node in reversed(nodes)]
        if nodes:
            events.append(self._cloud.recount_capacity())
        return events + self._cloud.drop_pool(pool_id)

    def add_resource(self, pool_id: str, progress: Progress) -> tuple[str, list[InventoryEvent]]:
        """Provision one node of the pool's hardware profile; its id and the events."""
        pool, spec = self._pool(pool_id)
        size = len(self._cloud.pool_nodes(pool_id))
        if size >= MAX_REPLICAS:
            raise InvalidRequestError(
                f"resource pool {pool.name} already has the maximum of {MAX_REPLICAS} resources"
            )
        created = self._cloud.join_node(pool_id, self._cloud.next_node_key(spec.name))
        host = _hostname(created.post)
        progress(f"provisioning node {host}")
        events = self._cloud.replace_pool(_with_replicas(pool, size + 1))
        events += [created, self._cloud.recount_capacity()]
        progress(f"node {host} joined pool {pool.name}")
        return created.object_id, events

    def remove_resource(self, resource_id: str, progress: Progress) -> list[InventoryEvent]:
        """Cordon, drain and remove a node, unless a disruption budget forbids the drain."""
        node = self._cloud.node(resource_id)
        if node is None:
            raise NotFoundError(f"resource {resource_id} not found")
        pool, spec = self._pool(node.resource_pool_id)
        host = _hostname(node)
        remaining = len(self._cloud.pool_nodes(pool.resource_pool_id)) - 1
        try:
            _keep_budget(spec, remaining, action=f"draining node {host}")
        except ConflictError as exc:
            progress(f"cannot drain node {host}: {exc.detail}")
            raise
        events = [self._cloud.replace_node(cordoned(node))]
        progress(f"cordoned node {host}")
        moved = workload_count(self._cloud.seed, self._cloud.placement(resource_id).key)
        progress(f"drained {moved} workloads from node {host}")
        events.append(self._cloud.drop_node(resource_id))
        events += self._cloud.replace_pool(_with_replicas(pool, remaining))
        events.append(self._cloud.recount_capacity())
        progress(f"removed node {host} from pool {pool.name}")
        return events

    def _pool(self, pool_id: str) -> tuple[ResourcePool, PoolSpec]:
        pool = self._cloud.pool(pool_id)
        if pool is None:
            raise NotFoundError(f"resource pool {pool_id} not found")
        return pool, self._cloud.pool_spec(pool_id)

    def _scale(self, pool_id: str, target: int) -> list[InventoryEvent]:
        """Add nodes to, or remove the newest nodes from, the pool until it has ``target``."""
        nodes = self._cloud.pool_nodes(pool_id)
        if target == len(nodes):
            return []
        name = self._cloud.pool_spec(pool_id).name
        events = [
            self._cloud.join_node(pool_id, self._cloud.next_node_key(name))
            for _ in range(target - len(nodes))
        ]
        events += [self._cloud.drop_node(node) for node in reversed(nodes[target:])]
        return [*events, self._cloud.recount_capacity()]


def _checked_replicas(replicas: int) -> int:
    if not 0 <= replicas <= MAX_REPLICAS:
        raise InvalidRequestError(
            f"replicas must be between 0 and {MAX_REPLICAS} in the simulated O-Cloud, "
            f"got {replicas}"
        )
    return replicas


def _keep_budget(spec: PoolSpec, remaining: int, *, action: str) -> None:
    """ConflictError when leaving ``remaining`` nodes breaks the pool's disruption budget."""
    if remaining < spec.min_nodes:
        raise ConflictError(
            f"{action} would violate the disruption budget of the {spec.role} workloads of "
            f"pool {spec.name}, which need at least {spec.min_nodes} nodes"
        )


def _with_replicas(pool: ResourcePool, replicas: int) -> ResourcePool:
    return pool.model_copy(update={"extensions": {**pool.extensions, "replicas": replicas}})


def _hostname(node: InventoryModel | None) -> str:
    if not isinstance(node, Resource):
        raise TypeError(f"expected a node, got {type(node).__name__}")
    return str(node.extensions["hostname"])
