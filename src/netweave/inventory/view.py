"""The in-memory inventory view of one backend.

The view consumes the adapter's ``watch()`` stream and holds every object three ways:
the model, its JSON-ready wire dict (for filters and field selection) and its JSON
bytes (serialised once per change, reused by every read).  Reads never touch the
backend.

It is also the one place that decides what counts as a change: a snapshot is diffed
against what the view held, and an event whose post state renders to the same bytes
as the stored object (a heartbeat-only update, say) is dropped.  Every real change is
handed to the registered listeners as an :class:`InventoryEvent`, which is what the
notification engine consumes.  With tracing on, the listeners are called under a span
of the change ("inventory change"): the notification engine's span for it is a child,
so a change and its notifications are one trace.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import orjson

from netweave.adapters.base import (
    EventType,
    InfrastructureAdapter,
    InventoryEvent,
    InventorySnapshot,
    WatchItem,
)
from netweave.errors import O2Error
from netweave.models.inventory import MODEL_OF_KIND, InventoryModel, JsonObject, ObjectKind
from netweave.observability import tracing
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics

__all__ = ["WATCH_ERROR_KINDS", "WATCH_RESTART_CAUSES", "Entry", "EventListener", "InventoryView"]

EventListener = Callable[[InventoryEvent], None]

#: ``kind`` of ``netweave_backend_watch_errors_total``: the backend said it is unavailable
#: (an O2 503, or a network error), refused otherwise (any other O2 error), or broke
WATCH_ERROR_KINDS = ("unavailable", "rejected", "unexpected")
#: ``cause`` of ``netweave_backend_watch_restarts_total``: re-subscribed after a failure or
#: after the stream ended, or the adapter sent a fresh snapshot mid-stream (it lost track)
WATCH_RESTART_CAUSES = ("error", "ended", "resync")

_log = get_logger("netweave.inventory.view")


@dataclass(frozen=True, slots=True)
class Entry:
    """One object of the view in its three forms."""

    model: InventoryModel
    wire: JsonObject
    raw: bytes

    @classmethod
    def of(cls, model: InventoryModel) -> Entry:
        wire = model.to_wire()
        return cls(model=model, wire=wire, raw=orjson.dumps(wire))

    @property
    def object_id(self) -> str:
        return self.model.object_id

    @property
    def parent_id(self) -> str | None:
        return self.model.parent_id


class _WatchMetrics:
    """The view's watch collectors, bound to its backend once (no label lookup per item);
    every series exists from the start, so rates and alerts work from the first failure."""

    def __init__(self, metrics: Metrics, backend: str) -> None:
        self.snapshots = metrics.watch_items.labels(backend, "snapshot")
        self.events = metrics.watch_items.labels(backend, "event")
        self.errors = {
            kind: metrics.watch_errors.labels(backend, kind) for kind in WATCH_ERROR_KINDS
        }
        self.restarts = {
            cause: metrics.watch_restarts.labels(backend, cause) for cause in WATCH_RESTART_CAUSES
        }
        self.ready = metrics.view_ready.labels(backend)
        self.up = metrics.watch_up.labels(backend)
        metrics.view_resyncs.labels(backend)
        self.ready.set(0)
        self.up.set(0)


def _error_kind(exc: Exception) -> str:
    """The ``kind`` label of a watch failure, from its type only (never its text)."""
    if isinstance(exc, O2Error):
        return "unavailable" if exc.status == 503 else "rejected"
    if isinstance(exc, OSError):  # refused or dropped connections, timeouts
        return "unavailable"
    return "unexpected"


class InventoryView:
    """Objects by kind and id, kept current by :meth:`run`."""

    def __init__(
        self,
        adapter: InfrastructureAdapter,
        *,
        metrics: Metrics | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self._adapter = adapter
        self._metrics = metrics
        self._watch = _WatchMetrics(metrics, adapter.name) if metrics is not None else None
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._objects: dict[ObjectKind, dict[str, Entry]] = {kind: {} for kind in MODEL_OF_KIND}
        self._sorted: dict[tuple[ObjectKind, str | None], list[Entry]] = {}
        self._generation: dict[ObjectKind, int] = dict.fromkeys(MODEL_OF_KIND, 0)
        self._listeners: list[EventListener] = []
        self._synced = asyncio.Event()
        self.not_ready_reason = "inventory view has not synchronised with the backend yet"

    # Reads -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._synced.is_set()

    async def wait_ready(self, seconds: float) -> bool:
        """Wait at most ``seconds`` for the first sync; says whether it happened."""
        try:
            await asyncio.wait_for(self._synced.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def generation(self, kind: ObjectKind) -> int:
        """A counter that changes whenever an object of ``kind`` changes."""
        return self._generation[kind]

    def get(self, kind: ObjectKind, object_id: str) -> Entry | None:
        return self._objects[kind].get(object_id)

    def entries(self, kind: ObjectKind, *, parent: str | None = None) -> Sequence[Entry]:
        """Objects of ``kind`` (children of ``parent`` if given), sorted by id."""
        key = (kind, parent)
        cached = self._sorted.get(key)
        if cached is None:
            values: Iterable[Entry] = self._objects[kind].values()
            if parent is not None:
                values = (entry for entry in values if entry.parent_id == parent)
            cached = sorted(values, key=_by_id)
            self._sorted[key] = cached
        return cached

    def count(self, kind: ObjectKind) -> int:
        return len(self._objects[kind])

    # Changes ---------------------------------------------------------------------------

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        self._listeners.remove(listener)

    def apply(self, item: WatchItem) -> list[InventoryEvent]:
        """Apply one item of the adapter's stream; returns the events it really caused."""
        if isinstance(item, InventorySnapshot):
            events = self._apply_snapshot(item)
            if self._metrics is not None:
                self._metrics.view_resyncs.labels(self._adapter.name).inc()
            self._synced.set()
            if self._watch is not None:
                self._watch.snapshots.inc()
                self._watch.up.set(1)
                self._watch.ready.set(1)
        else:
            event = self._apply_event(item)
            events = [event] if event is not None else []
            if self._watch is not None:
                self._watch.events.inc()
        for event in events:
            self._touch(event.kind)
            if self._metrics is not None:
                self._metrics.inventory_events.labels(event.kind.value, event.type.name).inc()
            if tracing.ENABLED:
                with tracing.span("inventory change", self._describe(event)):
                    self._tell(event)
            else:
                self._tell(event)
        self._update_gauges()
        return events

    def _tell(self, event: InventoryEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _describe(self, event: InventoryEvent) -> dict[str, str]:
        """The attributes of a change's span."""
        return {
            "netweave.backend": self._adapter.name,
            "netweave.object.kind": event.kind.value,
            "netweave.event.type": event.type.name,
            "netweave.object.id": event.object_id,
        }

    def _apply_snapshot(self, snapshot: InventorySnapshot) -> list[InventoryEvent]:
        first_sync = not self._synced.is_set()
        events: list[InventoryEvent] = []
        for kind in MODEL_OF_KIND:
            held = self._objects[kind]
            fresh = {model.object_id: Entry.of(model) for model in snapshot.objects.get(kind, ())}
            if not first_sync:
                events.extend(_diff(kind, held, fresh))
            self._objects[kind] = fresh
            self._touch(kind)
        return events

    def _apply_event(self, event: InventoryEvent) -> InventoryEvent | None:
        held = self._objects[event.kind]
        prior = held.get(event.object_id)
        if event.type is EventType.DELETE:
            if prior is None:
                return None
            del held[event.object_id]
            return InventoryEvent(event.kind, EventType.DELETE, event.object_id, prior=prior.model)
        assert event.post is not None  # guaranteed by InventoryEvent's invariants
        entry = Entry.of(event.post)
        held[event.object_id] = entry
        if prior is None:
            return InventoryEvent(event.kind, EventType.CREATE, event.object_id, post=entry.model)
        if prior.raw == entry.raw:
            return None  # nothing O2-IMS can see has changed
        return InventoryEvent(
            event.kind, EventType.MODIFY, event.object_id, prior=prior.model, post=entry.model
        )

    def _touch(self, kind: ObjectKind) -> None:
        self._generation[kind] += 1
        for key in [key for key in self._sorted if key[0] is kind]:
            del self._sorted[key]

    def _update_gauges(self) -> None:
        if self._metrics is None:
            return
        for kind, objects in self._objects.items():
            self._metrics.view_objects.labels(self._adapter.name, kind.value).set(len(objects))

    # The watch loop --------------------------------------------------------------------

    async def run(self) -> None:
        """Consume the adapter's watch stream forever, resuming with backoff on failure."""
        delay = self._backoff_initial
        watch = self._watch
        restart: str | None = None  # why this subscription is a restart, if it is one
        while True:
            if restart is not None and watch is not None:
                watch.restarts[restart].inc()
            try:
                first = True
                async for item in self._adapter.watch():
                    if not first and isinstance(item, InventorySnapshot) and watch is not None:
                        watch.restarts["resync"].inc()
                    first = False
                    self.apply(item)
                    delay = self._backoff_initial
                restart = "ended"
                _log.warning(
                    "backend watch stream ended; resubscribing", backend=self._adapter.name
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must survive any backend failure
                restart = "error"
                if watch is not None:
                    watch.errors[_error_kind(exc)].inc()
                self.not_ready_reason = (
                    exc.detail
                    if isinstance(exc, O2Error)
                    else f"backend watch failed: {type(exc).__name__}"
                )
                _log.warning(
                    "backend watch failed; retrying",
                    backend=self._adapter.name,
                    error=type(exc).__name__,
                    retry_in=round(delay, 2),
                )
            if watch is not None:
                watch.up.set(0)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff_max)


def _by_id(entry: Entry) -> str:
    return entry.object_id


def _diff(
    kind: ObjectKind, held: dict[str, Entry], fresh: dict[str, Entry]
) -> list[InventoryEvent]:
    events: list[InventoryEvent] = []
    for object_id, entry in fresh.items():
        prior = held.get(object_id)
        if prior is None:
            events.append(InventoryEvent(kind, EventType.CREATE, object_id, post=entry.model))
        elif prior.raw != entry.raw:
            events.append(
                InventoryEvent(
                    kind, EventType.MODIFY, object_id, prior=prior.model, post=entry.model
                )
            )
    for object_id, prior in held.items():
        if object_id not in fresh:
            events.append(InventoryEvent(kind, EventType.DELETE, object_id, prior=prior.model))
    return events
