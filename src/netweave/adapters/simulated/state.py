"""The live state of the simulated O-Cloud and the churn that changes it.

:class:`SimulatedOCloud` starts from :func:`~netweave.adapters.simulated.topology.build_topology`
and changes one thing per :meth:`SimulatedOCloud.step`, chosen by a generator seeded with
the seed, so the same seed replays the same history:

* a node's readiness flaps (a ``MODIFY`` of the resource): usually a NotReady node
  recovers, otherwise a Ready node goes down; at most three nodes are NotReady at a
  time and control-plane nodes are never touched.  The nodes churn takes down are
  alternately *unreachable* (the first one, and every other: the kubelet went silent,
  Ready ``Unknown``, the ``node-unreachable`` alarm) and *not ready* (the kubelet
  reports Ready ``False``: ``node-not-ready``); recovery clears either;
* a node joins an elastic pool that still exists (a ``CREATE`` of the resource, id from
  the key ``node-added-<n>``, hostname from the lowest free slot of the pool);
* a node is retired (a ``DELETE``), preferably one that churn added, never below a
  pool's minimum.

After that change, a second generator (seeded with the seed too, and apart so that the
choices above are the same with or without it) adds, in about :data:`PRESSURE_RATE` of
the steps, a pressure condition (MemoryPressure, DiskPressure, PIDPressure,
NetworkUnavailable) to a Ready node or removes one (a ``MODIFY`` of the node, at most
:data:`MAX_PRESSURE` True at a time), and in about :data:`WARNING_RATE` of the steps
reports a kubelet Warning event about a Ready node (no inventory change).  The alarms
all this raises and clears are kept by
:class:`~netweave.adapters.simulated.alarms.NodeAlarms`: every primitive below that adds,
replaces or drops a node queues the alarm signals it caused, which the adapter takes with
:meth:`SimulatedOCloud.take_alarm_signals` and publishes with the events.

Churn keeps the node count within [:data:`MIN_NODES`, :data:`MAX_NODES`] (writes may
take it outside; churn then only stops adding or removing); an addition or a removal
also modifies the deployment manager, whose capacity is the sum over nodes.  Churn only
touches the built-in elastic pools: pools created by writes are the operator's.  Pools
and sites change too, through the primitives the writes use.  This module does no I/O
and knows nothing of asyncio.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from netweave.adapters.alarm_catalog import (
    CONDITION_OF_DEFINITION,
    NODE_NOT_READY,
    NODE_UNREACHABLE,
    NODE_WARNING_EVENT,
)
from netweave.adapters.alarms import AlarmSignal, AlarmSnapshot
from netweave.adapters.base import EventType, InventoryEvent, InventorySnapshot
from netweave.adapters.simulated.alarms import INITIAL_WARNINGS, WARNING_REASONS, NodeAlarms
from netweave.adapters.simulated.catalog import POOLS, PoolSpec
from netweave.adapters.simulated.identity import node_id, pool_id
from netweave.adapters.simulated.nodes import (
    CONDITION_TYPES,
    build_node,
    cluster_capacity,
    condition_status,
    is_ready,
    with_condition,
    with_readiness,
)
from netweave.adapters.simulated.pools import site_with_pools
from netweave.adapters.simulated.topology import NodePlacement, build_topology, initial_placements
from netweave.errors import InvalidRequestError, NotFoundError
from netweave.models.inventory import (
    MODEL_OF_KIND,
    DeploymentManager,
    InventoryModel,
    ObjectKind,
    OCloudSiteInfo,
    Resource,
    ResourcePool,
)

__all__ = [
    "MAX_NODES",
    "MAX_NOT_READY",
    "MAX_PRESSURE",
    "MIN_NODES",
    "PRESSURE_RATE",
    "WARNING_RATE",
    "SimulatedOCloud",
]

MIN_NODES = 20  #: churn never removes a node below this count
MAX_NODES = 40  #: churn never adds a node above this count
MAX_NOT_READY = 3  #: churn never lets more nodes than this be NotReady at once
PRESSURE_RATE = 0.03  #: share of churn steps that add or remove a pressure condition
WARNING_RATE = 0.02  #: share of churn steps that report a Warning event about a node
MAX_PRESSURE = 3  #: churn never lets more pressure conditions than this be True at once
#: how often churn picks each pressure condition for a node
_PRESSURE_WEIGHTS = {
    "MemoryPressure": 3,
    "DiskPressure": 3,
    "PIDPressure": 1,
    "NetworkUnavailable": 1,
}
#: processes a simulated SystemOOM kills
_OOM_VICTIMS = ("upf-dataplane", "du-l1-worker", "ric-e2term", "ceph-osd", "cu-cp")

_Action = Callable[[], list[InventoryEvent]]
#: kinds whose objects change (kept in their own tables); the others never do
_LIVE_KINDS = frozenset(
    {
        ObjectKind.RESOURCE,
        ObjectKind.DEPLOYMENT_MANAGER,
        ObjectKind.RESOURCE_POOL,
        ObjectKind.OCLOUD_SITE,
    }
)


class SimulatedOCloud:
    """The mutable inventory of one simulated O-Cloud.

    Besides churn (:meth:`step`) it offers the primitive changes the gateway's writes are
    made of (:mod:`netweave.adapters.simulated.writes`): each changes the state and
    returns the events it caused, so that a caller doing several of them without an
    ``await`` in between publishes one consistent batch.
    """

    def __init__(
        self,
        ocloud_id: str,
        *,
        seed: int = 0,
        pool_owners: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` gives the alarms' event times (epoch seconds)."""
        topology = build_topology(ocloud_id, seed, pool_owners)
        self._ocloud_id = ocloud_id
        self._seed = seed
        self._rng = random.Random(f"netweave-simulated:{seed}:churn")
        self._alarm_rng = random.Random(f"netweave-simulated:{seed}:alarms")
        self._static: dict[ObjectKind, dict[str, InventoryModel]] = {
            kind: {obj.object_id: obj for obj in objects}
            for kind, objects in topology.objects().items()
            if kind not in _LIVE_KINDS
        }
        self._pools: dict[str, ResourcePool] = {p.resource_pool_id: p for p in topology.pools}
        self._specs: dict[str, PoolSpec] = {pool_id(ocloud_id, spec.name): spec for spec in POOLS}
        self._sites: dict[str, OCloudSiteInfo] = {s.o_cloud_site_id: s for s in topology.sites}
        self._nodes: dict[str, Resource] = {node.resource_id: node for node in topology.nodes}
        self._dm: DeploymentManager = topology.deployment_manager
        self._placements: dict[str, NodePlacement] = {
            node_id(ocloud_id, placement.key): placement for placement in initial_placements()
        }
        self._added: set[str] = set()
        self._additions = 0
        self._downs = 0  # nodes churn took down so far
        self._written: Counter[str] = Counter()
        self._alarms = NodeAlarms(clock)
        for node in self._nodes.values():
            self._alarms.node_changed(None, node)  # the start: in every snapshot, no signal
        for key, reason, message in INITIAL_WARNINGS:
            if node_id(ocloud_id, key) in self._nodes:
                self._alarms.warn(node_id(ocloud_id, key), reason, message)
        self._pending_alarms: list[AlarmSignal] = []

    @property
    def ocloud_id(self) -> str:
        return self._ocloud_id

    @property
    def seed(self) -> int:
        return self._seed

    def objects(self, kind: ObjectKind) -> tuple[InventoryModel, ...]:
        """Every object of ``kind`` (none for kinds outside ``MODEL_OF_KIND``)."""
        return tuple(self._table(kind).values())

    def get(self, kind: ObjectKind, object_id: str) -> InventoryModel | None:
        """The object of ``kind`` with ``object_id``, or None."""
        return self._table(kind).get(object_id)

    def snapshot(self) -> InventorySnapshot:
        """Everything, by kind, as it is now."""
        return InventorySnapshot(objects={kind: self.objects(kind) for kind in MODEL_OF_KIND})

    def alarm_snapshot(self) -> AlarmSnapshot:
        """Every alarm active now."""
        return self._alarms.snapshot()

    def take_alarm_signals(self) -> list[AlarmSignal]:
        """The alarm signals the changes since the last call caused, in order (and forget them)."""
        signals, self._pending_alarms = self._pending_alarms, []
        return signals

    # -- reads for the writes ------------------------------------------------------------

    def pool(self, the_pool_id: str) -> ResourcePool | None:
        return self._pools.get(the_pool_id)

    def pool_named(self, name: str) -> ResourcePool | None:
        return next((pool for pool in self._pools.values() if pool.name == name), None)

    def pool_spec(self, the_pool_id: str) -> PoolSpec:
        """The node template of a pool that exists (KeyError otherwise)."""
        return self._specs[the_pool_id]

    def pool_specs(self) -> Mapping[str, PoolSpec]:
        """The node template of every pool, by pool id, in creation order (read-only)."""
        return MappingProxyType(self._specs)

    def pool_nodes(self, the_pool_id: str) -> list[str]:
        """The ids of the pool's nodes, oldest first."""
        name = self._specs[the_pool_id].name
        return [nid for nid, p in self._placements.items() if p.pool.name == name]

    def node(self, the_node_id: str) -> Resource | None:
        return self._nodes.get(the_node_id)

    def placement(self, the_node_id: str) -> NodePlacement:
        """Where a node that exists sits (KeyError otherwise)."""
        return self._placements[the_node_id]

    def next_node_key(self, pool_name: str) -> str:
        """A fresh key for a node a write adds to ``pool_name``: ``<pool>/node-<n>``.

        ``n`` counts the pool name's write-added nodes over the state's lifetime (deleting
        and re-creating a pool does not reset it), so a key, and the id derived from it,
        is never handed out twice.
        """
        self._written[pool_name] += 1
        return f"{pool_name}/node-{self._written[pool_name]}"

    # -- primitive changes -----------------------------------------------------------------

    def insert_pool(self, spec: PoolSpec, pool: ResourcePool) -> list[InventoryEvent]:
        """Add an empty pool: its CREATE, then the MODIFY of the site that lists it."""
        self._specs[pool.resource_pool_id] = spec
        self._pools[pool.resource_pool_id] = pool
        created = InventoryEvent(
            kind=ObjectKind.RESOURCE_POOL,
            type=EventType.CREATE,
            object_id=pool.resource_pool_id,
            post=pool,
        )
        return [created, *self._relist_site(pool)]

    def replace_pool(
        self, pool: ResourcePool, spec: PoolSpec | None = None
    ) -> list[InventoryEvent]:
        """Replace a pool's object (and node template); its MODIFY, none if nothing changed."""
        if spec is not None:
            self._specs[pool.resource_pool_id] = spec
        prior = self._pools[pool.resource_pool_id]
        if prior == pool:
            return []
        self._pools[pool.resource_pool_id] = pool
        return [_modify(ObjectKind.RESOURCE_POOL, prior, pool)]

    def drop_pool(self, the_pool_id: str) -> list[InventoryEvent]:
        """Remove a pool that has no node left: its DELETE, then the site's MODIFY."""
        if self.pool_nodes(the_pool_id):
            raise RuntimeError(f"pool {the_pool_id} still has nodes")
        del self._specs[the_pool_id]
        prior = self._pools.pop(the_pool_id)
        deleted = InventoryEvent(
            kind=ObjectKind.RESOURCE_POOL, type=EventType.DELETE, object_id=the_pool_id, prior=prior
        )
        return [deleted, *self._relist_site(prior)]

    def join_node(self, the_pool_id: str, key: str) -> InventoryEvent:
        """Build node ``key`` in the lowest free slot of the pool, from its template: CREATE."""
        spec = self._specs[the_pool_id]
        used = {p.slot for p in self._placements.values() if p.pool.name == spec.name}
        slot = min(set(range(1, len(used) + 2)) - used)
        node = build_node(self._ocloud_id, seed=self._seed, pool=spec, slot=slot, key=key)
        self._nodes[node.resource_id] = node
        self._placements[node.resource_id] = NodePlacement(pool=spec, slot=slot, key=key)
        self._pending_alarms += self._alarms.node_changed(None, node)
        return InventoryEvent(
            kind=ObjectKind.RESOURCE, type=EventType.CREATE, object_id=node.resource_id, post=node
        )

    def replace_node(self, node: Resource) -> InventoryEvent:
        """Replace a node that exists by a changed copy: its MODIFY."""
        prior = self._nodes[node.resource_id]
        self._nodes[node.resource_id] = node
        self._pending_alarms += self._alarms.node_changed(prior, node)
        return _modify(ObjectKind.RESOURCE, prior, node)

    def relabel_nodes(self, the_pool_id: str) -> list[InventoryEvent]:
        """Give the pool's nodes the labels of its current template: a MODIFY per node changed.

        A node's labels are rebuilt from its slot, key and the template, so labels the
        pool no longer has disappear while the node's own labels stay as they are.
        """
        spec = self._specs[the_pool_id]
        events: list[InventoryEvent] = []
        for nid in self.pool_nodes(the_pool_id):
            placement = self._placements[nid]
            self._placements[nid] = NodePlacement(pool=spec, slot=placement.slot, key=placement.key)
            fresh = build_node(
                self._ocloud_id, seed=self._seed, pool=spec, slot=placement.slot, key=placement.key
            )
            node = self._nodes[nid]
            if node.extensions["labels"] != fresh.extensions["labels"]:
                extensions = {**node.extensions, "labels": fresh.extensions["labels"]}
                events.append(self.replace_node(node.model_copy(update={"extensions": extensions})))
        return events

    def drop_node(self, the_node_id: str) -> InventoryEvent:
        """Remove a node: its DELETE (the caller recounts capacity once it is done)."""
        prior = self._nodes.pop(the_node_id)
        del self._placements[the_node_id]
        self._added.discard(the_node_id)
        self._pending_alarms += self._alarms.node_changed(prior, None)
        return InventoryEvent(
            kind=ObjectKind.RESOURCE, type=EventType.DELETE, object_id=the_node_id, prior=prior
        )

    def recount_capacity(self) -> InventoryEvent:
        """Set the deployment manager's capacity to the sum over the nodes: its MODIFY."""
        prior = self._dm
        self._dm = prior.model_copy(update={"capacity": cluster_capacity(self._nodes.values())})
        return _modify(ObjectKind.DEPLOYMENT_MANAGER, prior, self._dm)

    # -- churn -----------------------------------------------------------------------------

    def step(self) -> list[InventoryEvent]:
        """Apply one churn change; the events it caused, in order."""
        actions: list[tuple[_Action, int]] = [(self._flap, 6)]
        if len(self._nodes) < MAX_NODES and self._elastic_pools():
            actions.append((self._add, 2))
        if len(self._nodes) > MIN_NODES and self._removable():
            actions.append((self._remove, 2))
        choices: Sequence[_Action] = [action for action, _ in actions]
        action = self._rng.choices(choices, weights=[weight for _, weight in actions])[0]
        return [*action(), *self._alarm_step()]

    def set_condition(
        self,
        the_node_id: str,
        definition_key: str,
        active: bool,
        *,
        reason: str = "SimulatedWarning",
        message: str = "",
    ) -> list[InventoryEvent]:
        """Make a node raise (``active``) or clear the alarm ``definition_key`` now.

        A condition alarm changes the node's conditions the way the matching Kubernetes
        condition would (``node-not-ready``: Ready False; ``node-unreachable``: Ready
        Unknown; a pressure: that condition True), so inventory and alarms agree: the
        node's MODIFY is returned and the alarm signal queued.  ``node-warning-event``
        records (or, inactive, forgets) a Warning event of ``reason`` about the node: no
        inventory change.  Asking for the state the node is already in changes nothing
        (but a Warning event again is a repeat, which refreshes its alarm).
        """
        node = self._nodes.get(the_node_id)
        if node is None:
            raise NotFoundError(f"no simulated node {the_node_id}")
        if definition_key == NODE_WARNING_EVENT:
            if active:
                text = message or f"{reason} reported on demand"
                self._pending_alarms += self._alarms.warn(the_node_id, reason, text)
            else:
                self._pending_alarms += self._alarms.clear_warning(the_node_id, reason)
            return []
        condition = CONDITION_OF_DEFINITION.get(definition_key)
        if condition is None:
            raise InvalidRequestError(f"no node alarm definition {definition_key!r}")
        status = condition_status(node, condition)
        if definition_key in (NODE_NOT_READY, NODE_UNREACHABLE):
            wanted = "False" if definition_key == NODE_NOT_READY else "Unknown"
            if active == (status == wanted):
                return []
            reachable = definition_key == NODE_NOT_READY
            post = with_readiness(node, ready=not active, reachable=reachable)
        else:
            if active == (status == "True"):
                return []
            post = with_condition(node, condition, active)
        return [self.replace_node(post)]

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
        reachable = False
        if not ready:  # alternately unreachable (as churn always did) and kubelet-NotReady
            self._downs += 1
            reachable = self._downs % 2 == 0
        node = with_readiness(self._nodes[target], ready=ready, reachable=reachable)
        return [self.replace_node(node)]

    def _alarm_step(self) -> list[InventoryEvent]:
        """Maybe add or remove a pressure condition, or report a Warning event."""
        roll = self._alarm_rng.random()
        if roll < PRESSURE_RATE:
            return self._pressure()
        if roll < PRESSURE_RATE + WARNING_RATE:
            self._warning()
        return []

    def _pressure(self) -> list[InventoryEvent]:
        active = [
            (nid, condition)
            for nid, node in self._nodes.items()
            for condition in CONDITION_TYPES
            if condition_status(node, condition) == "True"
        ]
        if active and (len(active) >= MAX_PRESSURE or self._alarm_rng.random() < 0.5):
            nid, condition = self._alarm_rng.choice(active)
            return [self.replace_node(with_condition(self._nodes[nid], condition, False))]
        ready = [nid for nid, node in self._nodes.items() if is_ready(node)]
        if not ready:
            return []
        nid = self._alarm_rng.choice(ready)
        free = [c for c in CONDITION_TYPES if condition_status(self._nodes[nid], c) != "True"]
        weights = [_PRESSURE_WEIGHTS[c] for c in free]
        condition = self._alarm_rng.choices(free, weights=weights)[0]
        return [self.replace_node(with_condition(self._nodes[nid], condition, True))]

    def _warning(self) -> None:
        ready = [nid for nid, node in self._nodes.items() if is_ready(node)]
        if not ready:
            return
        nid = self._alarm_rng.choice(ready)
        reason, template = self._alarm_rng.choice(WARNING_REASONS)
        message = template.format(
            node=self._nodes[nid].extensions["hostname"],
            process=self._alarm_rng.choice(_OOM_VICTIMS),
            n=self._alarm_rng.randrange(10**4, 10**10),
            boot=uuid.UUID(int=self._alarm_rng.getrandbits(128), version=4),
        )
        self._pending_alarms += self._alarms.warn(nid, reason, message)

    def _add(self) -> list[InventoryEvent]:
        target = self._rng.choice(self._elastic_pools())
        self._additions += 1
        created = self.join_node(target, f"node-added-{self._additions}")
        self._added.add(created.object_id)
        return [created, self.recount_capacity()]

    def _remove(self) -> list[InventoryEvent]:
        candidates = self._removable()
        added = [nid for nid in candidates if nid in self._added]
        target = self._rng.choice(added if added and self._rng.random() < 0.7 else candidates)
        return [self.drop_node(target), self.recount_capacity()]

    def _elastic_pools(self) -> list[str]:
        """The pools churn may add nodes to (built-in elastic pools that still exist)."""
        return [pid for pid, spec in self._specs.items() if spec.elastic]

    def _removable(self) -> list[str]:
        """Nodes churn may retire: in elastic pools above their minimum."""
        sizes = Counter(p.pool.name for p in self._placements.values())

        def removable(pool: PoolSpec) -> bool:
            return pool.elastic and sizes[pool.name] > pool.min_nodes

        return [nid for nid, p in self._placements.items() if removable(p.pool)]

    # -- helpers ---------------------------------------------------------------------------

    def _table(self, kind: ObjectKind) -> Mapping[str, InventoryModel]:
        if kind is ObjectKind.RESOURCE:
            return self._nodes
        if kind is ObjectKind.DEPLOYMENT_MANAGER:
            return {self._dm.deployment_manager_id: self._dm}
        if kind is ObjectKind.RESOURCE_POOL:
            return self._pools
        if kind is ObjectKind.OCLOUD_SITE:
            return self._sites
        return self._static.get(kind, {})

    def _relist_site(self, pool: ResourcePool) -> list[InventoryEvent]:
        """The MODIFY of the site of ``pool`` after its list of pools changed."""
        if pool.o_cloud_site_id is None or pool.o_cloud_site_id not in self._sites:
            return []
        prior = self._sites[pool.o_cloud_site_id]
        post = site_with_pools(prior, self._specs)
        if post == prior:
            return []
        self._sites[pool.o_cloud_site_id] = post
        return [_modify(ObjectKind.OCLOUD_SITE, prior, post)]


def _modify(kind: ObjectKind, prior: InventoryModel, post: InventoryModel) -> InventoryEvent:
    return InventoryEvent(
        kind=kind, type=EventType.MODIFY, object_id=post.object_id, prior=prior, post=post
    )
