"""The live state of the simulated O-Cloud and the churn that changes it.

:class:`SimulatedOCloud` starts from :func:`~netweave.adapters.simulated.topology.build_topology`
and changes one thing per :meth:`SimulatedOCloud.step`, chosen by a generator seeded with
the seed, so the same seed replays the same history:

* a node's readiness flaps (a ``MODIFY`` of the resource): usually a NotReady node
  recovers, otherwise a Ready node becomes unreachable; at most three nodes are
  NotReady at a time and control-plane nodes are never touched;
* a node joins an elastic pool (a ``CREATE`` of the resource, id from the key
  ``node-added-<n>``, hostname from the lowest free slot of the pool);
* a node is retired (a ``DELETE``), preferably one that churn added, never below a
  pool's minimum.

The node count stays within [:data:`MIN_NODES`, :data:`MAX_NODES`]; an addition or a
removal also modifies the deployment manager, whose capacity is the sum over nodes.
This module does no I/O and knows nothing of asyncio.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from netweave.adapters.base import EventType, InventoryEvent, InventorySnapshot
from netweave.adapters.simulated.catalog import POOLS, PoolSpec
from netweave.adapters.simulated.identity import node_id
from netweave.adapters.simulated.nodes import build_node, cluster_capacity, is_ready, with_readiness
from netweave.adapters.simulated.topology import NodePlacement, build_topology, initial_placements
from netweave.models.inventory import (
    MODEL_OF_KIND,
    DeploymentManager,
    InventoryModel,
    ObjectKind,
    Resource,
)

__all__ = ["MAX_NODES", "MAX_NOT_READY", "MIN_NODES", "SimulatedOCloud"]

MIN_NODES = 20  #: churn never removes a node below this count
MAX_NODES = 40  #: churn never adds a node above this count
MAX_NOT_READY = 3  #: churn never lets more nodes than this be NotReady at once

_Action = Callable[[], list[InventoryEvent]]


class SimulatedOCloud:
    """The mutable inventory of one simulated O-Cloud."""

    def __init__(
        self, ocloud_id: str, *, seed: int = 0, pool_owners: Mapping[str, str] | None = None
    ) -> None:
        topology = build_topology(ocloud_id, seed, pool_owners)
        self._ocloud_id = ocloud_id
        self._seed = seed
        self._rng = random.Random(f"netweave-simulated:{seed}:churn")
        self._static: dict[ObjectKind, dict[str, InventoryModel]] = {
            kind: {obj.object_id: obj for obj in objects}
            for kind, objects in topology.objects().items()
            if kind not in (ObjectKind.RESOURCE, ObjectKind.DEPLOYMENT_MANAGER)
        }
        self._nodes: dict[str, Resource] = {node.resource_id: node for node in topology.nodes}
        self._dm: DeploymentManager = topology.deployment_manager
        self._placements: dict[str, NodePlacement] = {
            node_id(ocloud_id, placement.key): placement for placement in initial_placements()
        }
        self._added: set[str] = set()
        self._additions = 0

    def objects(self, kind: ObjectKind) -> tuple[InventoryModel, ...]:
        """Every object of ``kind`` (none for kinds outside ``MODEL_OF_KIND``)."""
        if kind is ObjectKind.RESOURCE:
            return tuple(self._nodes.values())
        if kind is ObjectKind.DEPLOYMENT_MANAGER:
            return (self._dm,)
        return tuple(self._static.get(kind, {}).values())

    def get(self, kind: ObjectKind, object_id: str) -> InventoryModel | None:
        """The object of ``kind`` with ``object_id``, or None."""
        if kind is ObjectKind.RESOURCE:
            return self._nodes.get(object_id)
        if kind is ObjectKind.DEPLOYMENT_MANAGER:
            return self._dm if object_id == self._dm.deployment_manager_id else None
        return self._static.get(kind, {}).get(object_id)

    def snapshot(self) -> InventorySnapshot:
        """Everything, by kind, as it is now."""
        return InventorySnapshot(objects={kind: self.objects(kind) for kind in MODEL_OF_KIND})

    def step(self) -> list[InventoryEvent]:
        """Apply one churn change; the events it caused, in order."""
        actions: list[tuple[_Action, int]] = [(self._flap, 6)]
        if len(self._nodes) < MAX_NODES:
            actions.append((self._add, 2))
        if len(self._nodes) > MIN_NODES and self._removable():
            actions.append((self._remove, 2))
        choices: Sequence[_Action] = [action for action, _ in actions]
        action = self._rng.choices(choices, weights=[weight for _, weight in actions])[0]
        return action()

    def _flap(self) -> list[InventoryEvent]:
        not_ready = [nid for nid, node in self._nodes.items() if not is_ready(node)]
        if not_ready and (len(not_ready) >= MAX_NOT_READY or self._rng.random() < 0.6):
            target, ready = self._rng.choice(not_ready), True
        else:
            healthy = [
                nid
                for nid, node in self._nodes.items()
                if is_ready(node) and self._placements[nid].pool.elastic
            ]
            if not healthy:
                return []
            target, ready = self._rng.choice(healthy), False
        prior = self._nodes[target]
        post = with_readiness(prior, ready=ready)
        self._nodes[target] = post
        return [_modify(ObjectKind.RESOURCE, prior, post)]

    def _add(self) -> list[InventoryEvent]:
        pool = self._rng.choice([pool for pool in POOLS if pool.elastic])
        used = {p.slot for p in self._placements.values() if p.pool.name == pool.name}
        slot = min(set(range(1, len(used) + 2)) - used)
        self._additions += 1
        key = f"node-added-{self._additions}"
        node = build_node(self._ocloud_id, seed=self._seed, pool=pool, slot=slot, key=key)
        self._nodes[node.resource_id] = node
        self._placements[node.resource_id] = NodePlacement(pool=pool, slot=slot, key=key)
        self._added.add(node.resource_id)
        created = InventoryEvent(
            kind=ObjectKind.RESOURCE, type=EventType.CREATE, object_id=node.resource_id, post=node
        )
        return [created, self._update_capacity()]

    def _remove(self) -> list[InventoryEvent]:
        candidates = self._removable()
        added = [nid for nid in candidates if nid in self._added]
        target = self._rng.choice(added if added and self._rng.random() < 0.7 else candidates)
        prior = self._nodes.pop(target)
        del self._placements[target]
        self._added.discard(target)
        deleted = InventoryEvent(
            kind=ObjectKind.RESOURCE, type=EventType.DELETE, object_id=target, prior=prior
        )
        return [deleted, self._update_capacity()]

    def _removable(self) -> list[str]:
        """Nodes churn may retire: in elastic pools above their minimum."""
        sizes = Counter(p.pool.name for p in self._placements.values())

        def removable(pool: PoolSpec) -> bool:
            return pool.elastic and sizes[pool.name] > pool.min_nodes

        return [nid for nid, p in self._placements.items() if removable(p.pool)]

    def _update_capacity(self) -> InventoryEvent:
        prior = self._dm
        self._dm = prior.model_copy(update={"capacity": cluster_capacity(self._nodes.values())})
        return _modify(ObjectKind.DEPLOYMENT_MANAGER, prior, self._dm)


def _modify(kind: ObjectKind, prior: InventoryModel, post: InventoryModel) -> InventoryEvent:
    return InventoryEvent(
        kind=kind, type=EventType.MODIFY, object_id=post.object_id, prior=prior, post=post
    )
