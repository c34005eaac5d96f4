"""A controllable alarm source for the tests, and the pieces an alarm engine is built from.

:class:`FakeAlarmSource` implements :class:`~netweave.adapters.alarms.AlarmSource` like a
backend does: every consumer of ``alarm_signals()`` first gets a snapshot of the alarms
active now, then every signal published after it.  ``publish`` may be called from any
thread (the HTTP tests drive a gateway running in its own thread and loop).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace

from netweave.adapters.alarms import (
    SEVERITY_CRITICAL,
    SEVERITY_WARNING,
    AlarmDefinitionSpec,
    AlarmDictionarySpec,
    AlarmSignal,
    AlarmSignalItem,
    AlarmSnapshot,
)
from netweave.alarms.catalog import AlarmCatalog
from netweave.alarms.engine import AlarmEngine
from netweave.alarms.notifier import AlarmNotifier
from netweave.alarms.scope import AlarmScope
from netweave.observability.metrics import Metrics
from netweave.store.alarms import AlarmStore
from netweave.store.base import Delivery, Store

OCLOUD = "6f2c1a0e-8d1b-4f5e-9a3c-2b7d4e6f8a10"
GLOBAL_CLOUD = "da4698ba-c8a7-429d-ae16-484f15f282c5"
API_ROOT = "https://o2ims.example.net"
NODE_TYPE = "91d5d140-ef52-4167-b6dc-975ad1897f23"
STORAGE_TYPE = "0c7e1f4a-5b2d-4c3e-8f9a-1d2b3c4d5e6f"

NOT_READY = AlarmDefinitionSpec(
    key="node-not-ready",
    name="Node not ready",
    description="The node's Ready condition is False.",
    proposed_repair_actions="Check the kubelet and the node's network.",
    clearing_type="AUTOMATIC",
    severity=SEVERITY_CRITICAL,
    probable_cause="Node not ready",
    probable_cause_description="The kubelet reports the node is not ready.",
)
WARNING_EVENT = AlarmDefinitionSpec(
    key="node-warning-event",
    name="Node warning event",
    description="A Warning event about the node.",
    proposed_repair_actions="Read the event and act on it; then clear the alarm.",
    clearing_type="MANUAL",
    severity=SEVERITY_WARNING,
    probable_cause="Kubernetes Warning event",
    probable_cause_description="A Warning event names the cause.",
    extensions={"eventDriven": True},
)


def dictionaries(*resource_type_ids: str) -> list[AlarmDictionarySpec]:
    """One dictionary with both definitions per resource type."""
    return [
        AlarmDictionarySpec(
            resource_type_id=type_id,
            definitions=(NOT_READY, WARNING_EVENT),
            vendor="Example",
            version="1.2",
        )
        for type_id in resource_type_ids
    ]


def signal(
    resource_id: str,
    definition: AlarmDefinitionSpec = NOT_READY,
    *,
    raised: bool = True,
    severity: int | None = None,
    at: float | None = None,
    resource_type_id: str = NODE_TYPE,
    key: str | None = None,
    extensions: dict[str, object] | None = None,
) -> AlarmSignal:
    return AlarmSignal(
        key=key or f"{resource_id}/{definition.key}",
        definition_key=definition.key,
        resource_id=resource_id,
        resource_type_id=resource_type_id,
        severity=definition.severity if severity is None else severity,
        raised=raised,
        event_time=time.time() if at is None else at,
        extensions=extensions or {"node": resource_id[:8]},
    )


def cleared(item: AlarmSignal, *, at: float | None = None) -> AlarmSignal:
    return replace(item, raised=False, event_time=time.time() if at is None else at)


@dataclass
class FakeAlarmSource:
    """An in-memory backend's alarms: ``publish`` signals, every stream gets them."""

    dictionary_specs: list[AlarmDictionarySpec] = field(default_factory=list)
    active: dict[str, AlarmSignal] = field(default_factory=dict)
    _consumers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[AlarmSignalItem | None]]] = (
        field(default_factory=list)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def alarm_dictionaries(self) -> Sequence[AlarmDictionarySpec]:
        return list(self.dictionary_specs)

    async def alarm_signals(self) -> AsyncIterator[AlarmSignalItem]:
        queue: asyncio.Queue[AlarmSignalItem | None] = asyncio.Queue()
        with self._lock:
            snapshot = AlarmSnapshot(active=list(self.active.values()))
            self._consumers.append((asyncio.get_running_loop(), queue))
        yield snapshot
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    def publish(self, *items: AlarmSignal | AlarmSnapshot) -> None:
        """Raise, change or clear alarms (or announce a re-listed snapshot)."""
        with self._lock:
            for item in items:
                if isinstance(item, AlarmSnapshot):
                    self.active = {s.key: s for s in item.active}
                elif item.raised:
                    self.active[item.key] = item
                else:
                    self.active.pop(item.key, None)
            consumers = list(self._consumers)
        for loop, queue in consumers:
            for item in items:
                loop.call_soon_threadsafe(queue.put_nowait, item)

    def close(self) -> None:
        with self._lock:
            consumers, self._consumers = self._consumers, []
        for loop, queue in consumers:
            loop.call_soon_threadsafe(queue.put_nowait, None)


class Clock:
    """A clock that moves only when told to (epoch seconds)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Rig:
    """An engine and what it is made of, for one test."""

    store: Store  # the gateway store: outbox and lease
    alarms: AlarmStore
    source: FakeAlarmSource
    catalog: AlarmCatalog
    scope: AlarmScope
    notifier: AlarmNotifier
    metrics: Metrics
    clock: Callable[[], float]
    pools: dict[str, str]  #: resource id -> pool id, as the inventory would say

    def engine(self, replica: str = "r1", **options: object) -> AlarmEngine:
        return AlarmEngine(
            self.alarms,
            lease=self.store,
            catalog=self.catalog,
            notifier=self.notifier,
            scope=self.scope,
            replica=replica,
            clock=self.clock,
            metrics=self.metrics,
            **options,  # type: ignore[arg-type]
        )


def make_rig(
    store: Store,
    alarms: AlarmStore,
    *,
    clock: Callable[[], float] = time.time,
    pools: dict[str, str] | None = None,
    owners: dict[str, str] | None = None,
) -> Rig:
    """``pools`` maps resource ids to pool ids, ``owners`` pool ids to tenants."""
    source = FakeAlarmSource(dictionaries(NODE_TYPE, STORAGE_TYPE))
    pools = {} if pools is None else pools
    pool_of = pools.get
    owner_of = (owners or {}).get
    scope = AlarmScope(pool_of, lambda tenant, pool: tenant is None or owner_of(pool) == tenant)
    notifier = AlarmNotifier(
        alarms, store, scope=scope, api_root=API_ROOT, global_cloud_id=GLOBAL_CLOUD, clock=clock
    )
    return Rig(
        store=store,
        alarms=alarms,
        source=source,
        catalog=AlarmCatalog(OCLOUD, source),
        scope=scope,
        notifier=notifier,
        metrics=Metrics(version="test", backend="test"),
        clock=clock,
        pools=pools,
    )


async def drain(store: Store, *, wait: float = 0.0) -> list[Delivery]:
    """Every delivery queued in the outbox, taken and completed, in queue order."""
    found: list[Delivery] = []
    while True:
        batch = await store.take("test", limit=1000, wait=wait)
        if not batch:
            return found
        for delivery in batch:
            await store.complete(delivery)
        found.extend(batch)
        wait = 0.0


def node() -> str:
    return str(uuid.uuid4())
