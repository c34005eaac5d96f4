"""The simulated O-Cloud as an infrastructure adapter.

:class:`SimulatedAdapter` serves the inventory of a
:class:`~netweave.adapters.simulated.state.SimulatedOCloud` and, when built with a
``churn_interval``, changes it every ``churn_interval`` seconds so that watchers (and
through them, subscriptions) receive a believable stream of events.

Each :meth:`SimulatedAdapter.watch` stream has its own queue.  A stream takes its
snapshot and registers its queue in one step with no ``await`` in between, and churn
publishes a step's events to every queue in one step too, so each stream sees every
change exactly once: either in its snapshot or as an event after it.  A stream whose
consumer falls more than ``max_pending_events`` behind drops its backlog and receives a
fresh snapshot instead (the protocol's resynchronisation), so a stalled consumer
cannot make the adapter's memory grow without bound.

The adapter also takes writes (:class:`~netweave.adapters.lifecycle.PoolLifecycle` and
:class:`~netweave.adapters.lifecycle.ResourceLifecycle`, see
:mod:`netweave.adapters.simulated.writes`): a write changes the state and publishes its
events in one step, like a churn step, so watchers see it exactly as they see churn and
the two never interleave.  Its progress messages are delivered after that step (also
when it fails), so a progress callback that raises cannot leave a change half-published.

It is an :class:`~netweave.adapters.alarms.AlarmSource` too: :meth:`alarm_dictionaries`
gives each resource type its dictionary (the node catalogue of
:mod:`netweave.adapters.alarm_catalog` for server types, an empty one for node parts and
storage classes), and :meth:`alarm_signals` streams the nodes' alarms with the same
per-consumer queues, resync and shutdown as :meth:`watch`.  A churn step, a write or
:meth:`set_condition` publishes its inventory events first, then the alarm signals they
caused, in the same step.

Everything runs on the event loop's thread: call :meth:`SimulatedAdapter.apply_churn_step`,
:meth:`SimulatedAdapter.set_condition` and the writes from the loop, not from other threads.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import ClassVar, Generic, TypeVar

from netweave.adapters.alarm_catalog import empty_alarm_dictionary, node_alarm_dictionary
from netweave.adapters.alarms import (
    AlarmDictionarySpec,
    AlarmSignal,
    AlarmSignalItem,
    AlarmSnapshot,
)
from netweave.adapters.base import Capability, InventoryEvent, InventorySnapshot, WatchItem
from netweave.adapters.lifecycle import PoolChange, PoolRequest, Progress
from netweave.adapters.simulated.catalog import HARDWARE
from netweave.adapters.simulated.identity import resource_type_id
from netweave.adapters.simulated.state import SimulatedOCloud
from netweave.adapters.simulated.writes import SimulatedWrites
from netweave.errors import BackendUnavailableError
from netweave.models.inventory import InventoryModel, ObjectKind

__all__ = ["SimulatedAdapter"]

logger = logging.getLogger(__name__)


class _Signal(enum.Enum):
    """Control items of a watcher's queue, next to the events."""

    RESYNC = "resync"  #: the backlog was dropped: yield a fresh snapshot
    CLOSED = "closed"  #: the adapter closed: end the stream


_Item = TypeVar("_Item", InventoryEvent, AlarmSignal)
_Snapshot = TypeVar("_Snapshot", InventorySnapshot, AlarmSnapshot)


class _Watcher(Generic[_Item]):
    """The queue of one watch (or alarm) stream."""

    __slots__ = ("queue", "resyncing")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[_Item | _Signal] = asyncio.Queue()
        self.resyncing = False


class SimulatedAdapter:
    """A built-in, deterministic O-Cloud: three sites, seven pools, 29 nodes at start.

    ``ocloud_id`` (a UUID) roots every id, so ids are equal across restarts and
    replicas; ``seed`` picks serial numbers, addresses and the churn history.

    Churn runs only when ``churn_interval`` > 0.  Its background task starts lazily, on
    the first iteration of a :meth:`watch` stream or on :meth:`start`, whichever comes
    first, and stops on :meth:`aclose`.  :meth:`apply_churn_step` performs one step on
    demand whatever the interval.
    """

    name: ClassVar[str] = "simulated"

    def __init__(
        self,
        *,
        ocloud_id: str,
        churn_interval: float = 0.0,
        seed: int = 0,
        max_pending_events: int = 10_000,
        pool_owners: Mapping[str, str] | None = None,
    ) -> None:
        try:
            ocloud_id = str(uuid.UUID(ocloud_id))
        except ValueError:
            raise ValueError(f"ocloud_id must be a UUID, got {ocloud_id!r}") from None
        if churn_interval < 0:
            raise ValueError(f"churn_interval must not be negative, got {churn_interval}")
        if max_pending_events < 1:
            raise ValueError(f"max_pending_events must be positive, got {max_pending_events}")
        self._cloud = SimulatedOCloud(ocloud_id, seed=seed, pool_owners=pool_owners)
        self._writes = SimulatedWrites(self._cloud)
        self._churn_interval = churn_interval
        self._max_pending = max_pending_events
        self._watchers: list[_Watcher[InventoryEvent]] = []
        self._alarm_watchers: list[_Watcher[AlarmSignal]] = []
        self._node_types = frozenset(resource_type_id(ocloud_id, hw.key) for hw in HARDWARE)
        self._churn_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def capabilities(self) -> frozenset[Capability]:
        """WATCH and both lifecycles always; CHURN when it changes its own inventory."""
        always = {Capability.WATCH, Capability.POOL_LIFECYCLE, Capability.RESOURCE_LIFECYCLE}
        if self._churn_interval > 0:
            return frozenset({*always, Capability.CHURN})
        return frozenset(always)

    async def start(self) -> None:
        """Start background churn now rather than on the first watch (idempotent)."""
        self._start_churn()

    async def list_objects(self, kind: ObjectKind) -> Sequence[InventoryModel]:
        """Every object of ``kind``; empty for kinds the inventory view does not serve."""
        return self._cloud.objects(kind)

    async def get_object(self, kind: ObjectKind, object_id: str) -> InventoryModel | None:
        """The object of ``kind`` with ``object_id``, or None."""
        return self._cloud.get(kind, object_id)

    def watch(self) -> AsyncGenerator[WatchItem, None]:
        """A snapshot of the inventory, then every change; ends when the adapter closes.

        A stream opened after :meth:`aclose` ends at once.  A consumer that stops early
        should ``aclose()`` the generator (``contextlib.aclosing``) to unregister at once.
        """
        return self._stream(self._watchers, self._cloud.snapshot)

    def alarm_dictionaries(self) -> Sequence[AlarmDictionarySpec]:
        """One dictionary per resource type: the node catalogue for server types, an empty
        one for node parts and storage classes (see :mod:`netweave.adapters.alarm_catalog`)."""
        return [
            node_alarm_dictionary(rt.object_id)
            if rt.object_id in self._node_types
            else empty_alarm_dictionary(rt.object_id)
            for rt in self._cloud.objects(ObjectKind.RESOURCE_TYPE)
        ]

    def alarm_signals(self) -> AsyncGenerator[AlarmSignalItem, None]:
        """A snapshot of the active alarms, then every raise, change and clear; ends when
        the adapter closes.  Like :meth:`watch`: one queue per stream, a fresh snapshot
        for a consumer that fell ``max_pending_events`` behind."""
        return self._stream(self._alarm_watchers, self._cloud.alarm_snapshot)

    def apply_churn_step(self) -> list[InventoryEvent]:
        """Perform one churn step now, publish its events to every watcher, return them."""
        if self._closed:
            raise RuntimeError("the simulated adapter is closed")
        events = self._cloud.step()
        self._publish(events)
        return events

    def set_condition(
        self,
        resource_id: str,
        definition_key: str,
        active: bool,
        *,
        reason: str = "SimulatedWarning",
        message: str = "",
    ) -> list[AlarmSignal]:
        """Raise (``active``) or clear the alarm ``definition_key`` of node ``resource_id``
        now, as churn would; returns the alarm signals published (none if the node was
        already so).

        Condition alarms change the node's conditions (its MODIFY is published to the
        watchers first): ``node-not-ready`` sets Ready False, ``node-unreachable`` Ready
        Unknown, a pressure alarm its condition True; inactive, the condition recovers.
        ``node-warning-event`` records a Warning event of ``reason`` (and ``message``)
        about the node, a repeat refreshing its alarm; inactive, it clears that alarm
        (a MANUAL alarm an operator would otherwise clear).  ``NotFoundError`` for an id
        that is no node, ``InvalidRequestError`` for an unknown definition key.
        """
        if self._closed:
            raise RuntimeError("the simulated adapter is closed")
        events = self._cloud.set_condition(
            resource_id, definition_key, active, reason=reason, message=message
        )
        return self._publish(events)

    async def create_pool(self, request: PoolRequest) -> str:
        """Create a pool (and its ``replicas`` nodes); returns its ``resourcePoolId``."""
        self._check_open()
        the_pool_id, events = self._writes.create_pool(request)
        self._publish(events)
        return the_pool_id

    async def update_pool(self, pool_id: str, change: PoolChange) -> None:
        """Change a pool's description, labels or size (built-in pools too)."""
        self._check_open()
        self._publish(self._writes.update_pool(pool_id, change))

    async def delete_pool(self, pool_id: str, *, force: bool = False) -> None:
        """Delete a pool; one that still has nodes only with ``force`` (built-in pools too)."""
        self._check_open()
        self._publish(self._writes.delete_pool(pool_id, force=force))

    async def add_resource(self, pool_id: str, progress: Progress) -> str | None:
        """Add one node of the pool's hardware profile; returns its ``resourceId``."""
        self._check_open()
        steps: list[str] = []
        try:
            resource_id, events = self._writes.add_resource(pool_id, steps.append)
            self._publish(events)
        finally:
            for step in steps:
                progress(step)
        return resource_id

    async def remove_resource(self, resource_id: str, progress: Progress) -> None:
        """Cordon, drain and remove a node (a ConflictError when a disruption budget forbids)."""
        self._check_open()
        steps: list[str] = []
        try:
            self._publish(self._writes.remove_resource(resource_id, steps.append))
        finally:
            for step in steps:
                progress(step)

    async def aclose(self) -> None:
        """Stop churn and end every watch and alarm stream (idempotent)."""
        if self._closed:
            return
        self._closed = True
        task, self._churn_task = self._churn_task, None
        for watcher in self._watchers:
            watcher.queue.put_nowait(_Signal.CLOSED)
        for alarm_watcher in self._alarm_watchers:
            alarm_watcher.queue.put_nowait(_Signal.CLOSED)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError("the simulated O-Cloud is shut down")

    def _publish(self, events: Sequence[InventoryEvent]) -> list[AlarmSignal]:
        """Publish a change's events, then the alarm signals it caused; returns those."""
        self._fan_out(self._watchers, events)
        signals = self._cloud.take_alarm_signals()
        self._fan_out(self._alarm_watchers, signals)
        return signals

    async def _stream(
        self, watchers: list[_Watcher[_Item]], snapshot: Callable[[], _Snapshot]
    ) -> AsyncGenerator[_Snapshot | _Item, None]:
        """One stream: ``snapshot()``, then its queue's items; ends when the adapter closes.

        The snapshot is taken and the queue registered with no ``await`` in between, and
        a change is published to every queue in one step, so the stream sees every change
        exactly once: in its snapshot or after it.  A stream opened after :meth:`aclose`
        ends at once; a consumer that stops early should ``aclose()`` the generator
        (``contextlib.aclosing``) to unregister at once.
        """
        if self._closed:
            return
        self._start_churn()
        watcher: _Watcher[_Item] = _Watcher()
        watchers.append(watcher)
        try:
            yield snapshot()
            while True:
                item = await watcher.queue.get()
                if isinstance(item, _Signal):
                    if item is _Signal.CLOSED:
                        return
                    watcher.resyncing = False
                    yield snapshot()
                else:
                    yield item
        finally:
            watchers.remove(watcher)

    def _fan_out(self, watchers: list[_Watcher[_Item]], items: Sequence[_Item]) -> None:
        if not items:
            return
        for watcher in watchers:
            if watcher.resyncing:
                continue  # the coming snapshot will include these changes
            if watcher.queue.qsize() + len(items) > self._max_pending:
                while not watcher.queue.empty():
                    watcher.queue.get_nowait()
                watcher.resyncing = True
                watcher.queue.put_nowait(_Signal.RESYNC)
                logger.warning(
                    "simulated stream consumer fell %d items behind; it will resync",
                    self._max_pending,
                )
                continue
            for item in items:
                watcher.queue.put_nowait(item)

    def _start_churn(self) -> None:
        if self._churn_interval > 0 and self._churn_task is None and not self._closed:
            self._churn_task = asyncio.get_running_loop().create_task(
                self._churn(), name="netweave-simulated-churn"
            )

    async def _churn(self) -> None:
        while True:
            await asyncio.sleep(self._churn_interval)
            try:
                self.apply_churn_step()
            except Exception:
                logger.exception("simulated churn step failed")
