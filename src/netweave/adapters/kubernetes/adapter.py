"""The Kubernetes backend: the O-Cloud inventory of a real cluster, kept live by watches.

Configuration and transport come from lightkube: ``KubeConfig`` finds the kubeconfig
(``KUBECONFIG``, ``~/.kube/config``) or the in-cluster service account, and lightkube's
client adapter builds the authenticated, TLS-verified httpx client.  Lists and watches
run on raw JSON through that client (:mod:`.watching`): lightkube's typed watch cannot
ask for bookmarks, and decoding thousands of Node models per resync would cost more than
the mapping itself.

Changes from the reflectors are coalesced for ``coalesce`` seconds, then mapped
(:mod:`.mapping`) and diffed against the O2-IMS state held here; only real O2-IMS
changes become :class:`InventoryEvent`s.  A node's own Resource is recomputed when that
node changes; the aggregates (pools, node-shape types, the deployment manager's
capacity) once per batch.

The adapter also writes (:mod:`.writes`): it creates, changes and deletes pools and adds
and retires nodes.  A write changes Kubernetes objects only; its effect reaches the
inventory through the watches, like anybody else's change.

It is an :class:`~netweave.adapters.alarms.AlarmSource` too (:mod:`.alarms`): node
conditions and Warning events about nodes become alarms.  The event reflector starts with
the first :meth:`KubernetesAdapter.alarm_signals` stream; node alarm signals are computed
as the node reflector reports changes, not coalesced, since each is already a real
change.  A relist of nodes or events (after ``410 Gone``) sends every alarm stream a
fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx2 as httpx
import orjson

from netweave.adapters.alarm_catalog import empty_alarm_dictionary, node_alarm_dictionary
from netweave.adapters.alarms import AlarmDictionarySpec, AlarmSignal, AlarmSignalItem
from netweave.adapters.base import (
    Capability,
    EventType,
    InventoryEvent,
    InventorySnapshot,
    WatchItem,
)
from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.alarms import EVENTS, WARNING_NODE_EVENTS, NodeAlarmTracker
from netweave.adapters.kubernetes.pools import Catalog
from netweave.adapters.kubernetes.rest import RESOURCE_POOL_GROUP_VERSION, RESOURCE_POOLS
from netweave.adapters.kubernetes.watching import Reflector
from netweave.adapters.kubernetes.writes import ClusterState, Writes
from netweave.adapters.lifecycle import PoolChange, PoolRequest, Progress
from netweave.errors import BackendUnavailableError
from netweave.models.inventory import InventoryModel, ObjectKind, ResourcePool, ResourceType
from netweave.observability.logging import get_logger

__all__ = ["KubernetesAdapter"]

_log = get_logger("netweave.kubernetes")

NODES = "/api/v1/nodes"
STORAGE_CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
CAPI_GROUP_VERSION = "/apis/cluster.x-k8s.io/v1beta1"
MACHINE_SETS = f"{CAPI_GROUP_VERSION}/machinesets"

_KINDS = (
    ObjectKind.RESOURCE_TYPE,
    ObjectKind.RESOURCE_POOL,
    ObjectKind.RESOURCE,
    ObjectKind.DEPLOYMENT_MANAGER,
)
_CLOSED = object()


class KubernetesAdapter:
    """An :class:`~netweave.adapters.base.InfrastructureAdapter` over one cluster."""

    name: ClassVar[str] = "kubernetes"

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        ocloud_id: str,
        api_server_url: str,
        cluster_name: str,
        pool_label: str = m.DEFAULT_POOL_LABEL,
        global_location_id: str = "unknown",
        location: str | None = None,
        tenant_label: str = m.DEFAULT_TENANT_LABEL,
        shared_label: str = m.DEFAULT_SHARED_LABEL,
        coalesce: float = 0.02,
        sync_timeout: float = 30.0,
        machineset_template: str | None = None,
        drain_timeout: float = 300.0,
        drain_grace_period: int | None = None,
    ) -> None:
        """``machineset_template``: ``namespace/name`` of the MachineSet new pools clone
        (None: the first by namespace/name); ``drain_timeout``: seconds a node's drain may
        take, PodDisruptionBudget refusals retried meanwhile; ``drain_grace_period``: the
        evictions' ``gracePeriodSeconds`` (None: each pod's own)."""
        self._http = http
        self._ctx = m.MappingContext(
            ocloud_id=ocloud_id,
            cluster_name=cluster_name,
            api_server_url=api_server_url,
            pool_label=pool_label,
            global_location_id=global_location_id,
            location=location,
            tenant_label=tenant_label,
            shared_label=shared_label,
        )
        self._coalesce = coalesce
        self._sync_timeout = sync_timeout
        self._version: str | None = None
        self._kube_system: dict[str, Any] = {"metadata": {"uid": api_server_url}}
        self._nodes = Reflector(
            http,
            NODES,
            resource="nodes",
            on_change=self._node_changed,
            on_relist=self._alarms_relisted,
        )
        self._alarms = NodeAlarmTracker(self._ctx)
        self._events: Reflector | None = None  # started by the first alarm stream
        self._alarm_queues: list[asyncio.Queue[object]] = []
        self._alarms_started = asyncio.Lock()
        self._storage = Reflector(
            http,
            STORAGE_CLASSES,
            resource="storageclasses.storage.k8s.io",
            on_change=self._aggregate_changed,
        )
        self._machinesets: Reflector | None = None
        self._resource_pools: Reflector | None = None
        self._writes = Writes(
            http,
            self._ctx,
            machineset_template=machineset_template,
            drain_timeout=drain_timeout,
            drain_grace_period=drain_grace_period,
        )
        self._dirty_nodes: set[str] = set()
        self._dirty_all = True
        self._wake = asyncio.Event()
        self._shapes: dict[str, m.NodeShape] = {}  # node uid -> shape
        self._pool_of: dict[str, str] = {}  # node uid -> resource pool id
        self._capacity: dict[str, bytes] = {}  # node uid -> its capacity, serialised
        self._resources: dict[str, InventoryModel] = {}  # node uid -> Resource
        self._state: dict[ObjectKind, dict[str, InventoryModel]] = {kind: {} for kind in _KINDS}
        self._queues: list[asyncio.Queue[object]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started = asyncio.Lock()
        self._ready = False
        self._closed = False

    @classmethod
    def from_kubeconfig(
        cls,
        *,
        ocloud_id: str,
        kubeconfig: Path | None = None,
        context: str | None = None,
        cluster_name: str | None = None,
        **options: Any,
    ) -> KubernetesAdapter:
        """Build from a kubeconfig file, ``KUBECONFIG``/``~/.kube/config`` or the in-cluster
        service account (lightkube's ``KubeConfig.from_env`` order)."""
        from lightkube.config import client_adapter
        from lightkube.config.kubeconfig import KubeConfig

        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        single = config.get(context_name=context)
        if single is None:
            raise ValueError("the kubeconfig has no usable context")
        params = client_adapter.ConnectionParams(timeout=httpx.Timeout(10.0), trust_env=False)
        http = client_adapter.AsyncClient(single, params)
        server = single.cluster.server
        name = cluster_name or single.context.cluster or "kubernetes"
        return cls(
            http=http, ocloud_id=ocloud_id, api_server_url=server, cluster_name=name, **options
        )

    # The adapter protocol ---------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(
            {Capability.WATCH, Capability.POOL_LIFECYCLE, Capability.RESOURCE_LIFECYCLE}
        )

    @property
    def degraded(self) -> list[str]:
        """Why parts of the cluster are missing from the inventory, if they are."""
        return [r.degraded for r in self._reflectors() if r.degraded]

    async def list_objects(self, kind: ObjectKind) -> Sequence[InventoryModel]:
        await self._start()
        return list(self._state.get(kind, {}).values())

    async def get_object(self, kind: ObjectKind, object_id: str) -> InventoryModel | None:
        await self._start()
        return self._state.get(kind, {}).get(object_id)

    async def watch(self) -> AsyncGenerator[WatchItem, None]:
        await self._start()
        queue: asyncio.Queue[object] = asyncio.Queue()
        snapshot = InventorySnapshot(
            {kind: list(held.values()) for kind, held in self._state.items()}
        )
        self._queues.append(queue)  # no await between the snapshot and this: nothing is lost
        try:
            yield snapshot
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                assert isinstance(item, InventoryEvent)
                yield item
        finally:
            self._queues.remove(queue)

    # Alarms (AlarmSource) -----------------------------------------------------------------

    @property
    def alarms_degraded(self) -> str | None:
        """Why Warning events raise no alarms, if they do not (a missing RBAC permission).

        Kept apart from :attr:`degraded`, which is about the inventory."""
        return self._events.degraded if self._events is not None else None

    def alarm_dictionaries(self) -> list[AlarmDictionarySpec]:
        """One dictionary per resource type the cluster has now: the node catalogue for
        node shapes, an empty one for storage classes (none before the first sync)."""
        return [
            node_alarm_dictionary(rt.object_id)
            if rt.resource_class == "COMPUTE"
            else empty_alarm_dictionary(rt.object_id)
            for rt in self._state[ObjectKind.RESOURCE_TYPE].values()
            if isinstance(rt, ResourceType)
        ]

    async def alarm_signals(self) -> AsyncGenerator[AlarmSignalItem, None]:
        """A snapshot of the active node alarms once nodes and events have synced, then
        every raise, severity change, refresh and clear, and a fresh snapshot after a
        relist; ends on :meth:`aclose`.  Each stream gets everything (one queue each).

        Like :meth:`list_objects`, the first iteration raises
        :class:`BackendUnavailableError` while the cluster has not synced; retry.
        """
        if self._closed:
            return
        await self._start()
        await self._start_alarms()
        queue: asyncio.Queue[object] = asyncio.Queue()
        snapshot = self._alarms.snapshot()
        self._alarm_queues.append(queue)  # no await between the snapshot and this
        try:
            yield snapshot
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                assert isinstance(item, AlarmSignalItem)
                yield item
        finally:
            self._alarm_queues.remove(queue)

    async def _start_alarms(self) -> None:
        """Start the Warning event reflector once; wait until it has listed."""
        async with self._alarms_started:
            if self._events is None:
                self._events = Reflector(
                    self._http,
                    EVENTS,
                    resource="events",
                    selector=WARNING_NODE_EVENTS,
                    on_change=self._event_changed,
                    on_relist=self._alarms_relisted,
                )
                self._tasks.append(asyncio.create_task(self._events.run(), name=EVENTS))
            try:
                await asyncio.wait_for(self._events.synced.wait(), self._sync_timeout)
            except TimeoutError:
                raise BackendUnavailableError(
                    f"Kubernetes API server {self._ctx.api_server_url}: "
                    "first sync of node events not finished"
                ) from None

    def _event_changed(self, uid: str, old: Any, new: Any) -> None:
        self._publish_alarms(self._alarms.event_changed(uid, old, new))

    def _alarms_relisted(self) -> None:
        """A reflector listed again: it may have missed changes, so resend everything."""
        if self._alarm_queues:
            snapshot = self._alarms.snapshot()
            for queue in self._alarm_queues:
                queue.put_nowait(snapshot)

    def _publish_alarms(self, signals: list[AlarmSignal]) -> None:
        for signal in signals:
            for queue in self._alarm_queues:
                queue.put_nowait(signal)

    # Writes (PoolLifecycle, ResourceLifecycle) ------------------------------------------

    async def create_pool(self, request: PoolRequest) -> str:
        """A MachineSet where cluster-api is served, else a ``ResourcePool`` object."""
        await self._start()
        return await self._writes.create_pool(request, self._cluster())

    async def update_pool(self, pool_id: str, change: PoolChange) -> None:
        await self._start()
        await self._writes.update_pool(pool_id, change, self._cluster())

    async def delete_pool(self, pool_id: str, *, force: bool = False) -> None:
        await self._start()
        await self._writes.delete_pool(pool_id, force=force, state=self._cluster())

    async def add_resource(self, pool_id: str, progress: Progress) -> str | None:
        """Scales the pool's MachineSet by one; None: the node's id is known only once the
        provider has built the machine and the node has registered."""
        await self._start()
        await self._writes.add_resource(pool_id, progress, self._cluster())
        return None

    async def remove_resource(self, resource_id: str, progress: Progress) -> None:
        await self._start()
        await self._writes.remove_resource(resource_id, progress, self._cluster())

    def _cluster(self) -> ClusterState:
        return ClusterState(
            catalog=Catalog(
                nodes=list(self._nodes.objects.values()),
                machinesets=list(self._machinesets.objects.values()) if self._machinesets else [],
                resource_pools=(
                    list(self._resource_pools.objects.values()) if self._resource_pools else []
                ),
            ),
            capi=self._machinesets is not None,
            resource_pools=self._resource_pools is not None,
            pool_names=frozenset(
                pool.name
                for pool in self._state[ObjectKind.RESOURCE_POOL].values()
                if isinstance(pool, ResourcePool)
            ),
        )

    async def aclose(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for queue in [*self._queues, *self._alarm_queues]:
            queue.put_nowait(_CLOSED)
        await self._http.aclose()

    # Start-up ---------------------------------------------------------------------------

    async def _start(self) -> None:
        """Discover the cluster and start the watches once; wait until they have synced.

        Raises :class:`BackendUnavailableError` (with the reason) while the API server
        cannot be reached or the first sync has not finished; the caller retries.
        """
        if self._ready:
            return
        async with self._started:
            if self._ready:
                return
            if not self._tasks:
                await self._discover()
                for reflector in self._reflectors():
                    self._tasks.append(asyncio.create_task(reflector.run(), name=reflector.path))
                self._tasks.append(asyncio.create_task(self._publish_loop(), name="k8s-publish"))
            waits = [reflector.synced.wait() for reflector in self._reflectors()]
            try:
                await asyncio.wait_for(asyncio.gather(*waits), self._sync_timeout)
            except TimeoutError:
                raise BackendUnavailableError(
                    f"Kubernetes API server {self._ctx.api_server_url}: first sync not finished"
                ) from None
            self._publish(self._recompute())  # nobody listens yet: this fills the state
            self._ready = True
            _log.info(
                "kubernetes inventory synchronised",
                server=self._ctx.api_server_url,
                version=self._version,
                nodes=len(self._nodes.objects),
                machinesets=self._machinesets is not None,
                degraded=self.degraded or None,
            )

    async def _discover(self) -> None:
        try:
            version = await self._http.get("/version")
            version.raise_for_status()
        except (httpx.HTTPError, OSError) as exc:
            raise BackendUnavailableError(
                f"Kubernetes API server {self._ctx.api_server_url} is unreachable: "
                f"{type(exc).__name__}"
            ) from None
        self._version = str(orjson.loads(version.content).get("gitVersion", "")) or None
        namespace = await self._http.get("/api/v1/namespaces/kube-system")
        if namespace.status_code == 200:
            self._kube_system = orjson.loads(namespace.content)
        else:
            _log.error(
                "cannot read namespace kube-system; the deployment manager id falls back to "
                "one derived from the API server URL",
                status=namespace.status_code,
            )
        capi = await self._http.get(CAPI_GROUP_VERSION)
        if capi.status_code == 200 and any(
            resource.get("name") == "machinesets"
            for resource in orjson.loads(capi.content).get("resources", ())
        ):
            self._machinesets = Reflector(
                self._http,
                MACHINE_SETS,
                resource="machinesets.cluster.x-k8s.io",
                on_change=self._machinesets_changed,
            )
        elif capi.status_code not in (200, 404):
            _log.warning("cannot discover the cluster-api API", status=capi.status_code)
        pools = await self._http.get(RESOURCE_POOL_GROUP_VERSION)
        if pools.status_code == 200 and any(
            resource.get("name") == "resourcepools"
            for resource in orjson.loads(pools.content).get("resources", ())
        ):
            self._resource_pools = Reflector(
                self._http,
                RESOURCE_POOLS,
                resource="resourcepools.o2ims.oran.org",
                on_change=self._machinesets_changed,
            )
        elif pools.status_code not in (200, 404):
            _log.warning("cannot discover the ResourcePool API", status=pools.status_code)

    def _reflectors(self) -> list[Reflector]:
        found = [self._nodes, self._storage]
        if self._machinesets is not None:
            found.append(self._machinesets)
        if self._resource_pools is not None:
            found.append(self._resource_pools)
        return found

    # Changes ----------------------------------------------------------------------------

    def _node_changed(self, uid: str, old: Any, new: Any) -> None:
        self._dirty_nodes.add(uid)
        self._wake.set()
        self._publish_alarms(self._alarms.node_changed(uid, old, new))

    def _aggregate_changed(self, _uid: str, _old: Any, _new: Any) -> None:
        self._wake.set()

    def _machinesets_changed(self, _uid: str, _old: Any, _new: Any) -> None:
        """A MachineSet or ResourcePool changed: the pool membership of any node may."""
        self._dirty_all = True
        self._wake.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._coalesce)
            self._wake.clear()
            if self._ready:
                self._publish(self._recompute())

    def _publish(self, events: list[InventoryEvent]) -> None:
        for event in events:
            for queue in self._queues:
                queue.put_nowait(event)

    def _recompute(self) -> list[InventoryEvent]:
        """Map what changed and diff it against the O2-IMS state; returns the changes.

        Per batch: the changed nodes' Resources; the pools and types (cheap: per-node pool
        ids and shapes are cached); the deployment manager only when some node's capacity
        changed or nodes came or went, since summing thousands of quantities is the
        costliest step.
        """
        ctx = self._ctx
        nodes = self._nodes.objects
        machinesets = (
            {m.machineset_key(ms): ms for ms in self._machinesets.objects.values()}
            if self._machinesets is not None
            else {}
        )
        resource_pools = (
            m.resource_pools_by_name(self._resource_pools.objects.values(), ctx)
            if self._resource_pools is not None
            else {}
        )
        dirty = set(nodes) | set(self._resources) if self._dirty_all else self._dirty_nodes
        self._dirty_nodes = set()
        self._dirty_all = False
        events: list[InventoryEvent] = []
        held = self._state[ObjectKind.RESOURCE]
        capacity_changed = not self._state[ObjectKind.DEPLOYMENT_MANAGER]
        for uid in dirty:
            node = nodes.get(uid)
            prior = self._resources.pop(uid, None)
            self._shapes.pop(uid, None)
            self._pool_of.pop(uid, None)
            old_capacity = self._capacity.pop(uid, None)
            post: InventoryModel | None = None
            if node is not None:
                self._shapes[uid] = m.node_shape(node)
                self._pool_of[uid] = m.pool_id_for_node(node, ctx, machinesets, resource_pools)
                self._capacity[uid] = _capacity_key(node)
                post = m.resource_for_node(node, ctx, pool_id=self._pool_of[uid])
                self._resources[uid] = post
            capacity_changed = capacity_changed or old_capacity != self._capacity.get(uid)
            events.extend(_change(ObjectKind.RESOURCE, held, prior, post))
        fresh_types: dict[str, InventoryModel] = {}
        for shape in set(self._shapes.values()):
            compute = m.resource_type_for_shape(shape, ctx)
            fresh_types[compute.object_id] = compute
        for storage_class in self._storage.objects.values():
            storage = m.resource_type_for_storage_class(storage_class, ctx)
            fresh_types[storage.object_id] = storage
        events.extend(
            _replace(
                ObjectKind.RESOURCE_POOL, self._state, self._pools(machinesets, resource_pools)
            )
        )
        events.extend(_replace(ObjectKind.RESOURCE_TYPE, self._state, fresh_types))
        if capacity_changed:
            manager = m.deployment_manager_for_cluster(
                self._kube_system, nodes.values(), ctx, version=self._version
            )
            events.extend(
                _replace(ObjectKind.DEPLOYMENT_MANAGER, self._state, {manager.object_id: manager})
            )
        return events

    def _pools(
        self, machinesets: Mapping[tuple[str, str], Any], resource_pools: Mapping[str, Any]
    ) -> dict[str, InventoryModel]:
        ctx = self._ctx
        nodes = self._nodes.objects
        pools: dict[str, InventoryModel] = {}
        for ms in machinesets.values():
            pool = m.resource_pool_for_machineset(ms, ctx)
            pools[pool.object_id] = pool
        members: dict[str, list[Any]] = {}
        for uid, pool_id in self._pool_of.items():
            members.setdefault(pool_id, []).append(nodes[uid])
        for obj in resource_pools.values():
            pool_id = m.resource_pool_object_id(obj, ctx)
            pools[pool_id] = m.resource_pool_for_object(obj, members.get(pool_id, ()), ctx)
        by_label: dict[str | None, list[Any]] = {}
        for pool_id, in_pool in members.items():
            if pool_id in pools:
                continue
            for node in in_pool:
                by_label.setdefault(m.pool_label_value(node, ctx), []).append(node)
        for value, labelled in by_label.items():
            pool = m.resource_pool_for_label(value, labelled, ctx)
            pools[pool.object_id] = pool
        return pools


def _capacity_key(node: Mapping[str, Any]) -> bytes:
    """What the deployment manager's capacity depends on, for one node."""
    return orjson.dumps((node.get("status") or {}).get("capacity"), option=orjson.OPT_SORT_KEYS)


def _change(
    kind: ObjectKind,
    held: dict[str, InventoryModel],
    prior: InventoryModel | None,
    post: InventoryModel | None,
) -> list[InventoryEvent]:
    """Record one object's new state in ``held``; the event, if the O2-IMS view changed."""
    if prior is not None and (post is None or post.object_id != prior.object_id):
        held.pop(prior.object_id, None)
        if post is None:
            return [InventoryEvent(kind, EventType.DELETE, prior.object_id, prior=prior)]
        prior = None
    if post is None:
        return []
    held[post.object_id] = post
    if prior is None:
        return [InventoryEvent(kind, EventType.CREATE, post.object_id, post=post)]
    if prior == post:
        return []
    return [InventoryEvent(kind, EventType.MODIFY, post.object_id, prior=prior, post=post)]


def _replace(
    kind: ObjectKind,
    state: dict[ObjectKind, dict[str, InventoryModel]],
    fresh: Mapping[str, InventoryModel],
) -> list[InventoryEvent]:
    held = state[kind]
    events: list[InventoryEvent] = []
    for object_id, post in fresh.items():
        prior = held.get(object_id)
        if prior is None:
            events.append(InventoryEvent(kind, EventType.CREATE, object_id, post=post))
        elif prior != post:
            events.append(InventoryEvent(kind, EventType.MODIFY, object_id, prior=prior, post=post))
    for object_id, prior in held.items():
        if object_id not in fresh:
            events.append(InventoryEvent(kind, EventType.DELETE, object_id, prior=prior))
    state[kind] = dict(fresh)
    return events
