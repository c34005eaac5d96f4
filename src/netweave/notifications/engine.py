"""The notification engine: inventory events in, durable deliveries out.

The inventory view hands every real change to :meth:`NotificationEngine.on_event`.  The
engine matches it against the subscriptions (:mod:`.matching`), renders one
notification per matching subscription (:mod:`.payload`) and writes them all to the
outbox before anything is attempted; delivery workers (:mod:`.delivery`) take them from
there.

Several replicas: every replica's view sees every change, but only the holder of the
``emitter`` lease writes deliveries, so each change is notified once.  The lease (with a
fencing token) is renewed every third of its time to live; a replica that cannot renew
stops emitting when its lease may have run out.  Non-holders keep the changes of the
last ``replay_window`` seconds; a replica that takes the lease over writes those it has,
so changes seen while the old holder was dying are not lost.  The holder records the
identity of every change it wrote (a hash of kind, id, type and states, identical on
every replica) in the store for twice that window, and the new holder skips the changes
already written; only a change the old holder wrote in its very last moment, without
recording it, can reach a subscriber twice (at-least-once across a take-over).

Store outages: changes wait in memory (at most ``buffer_limit``; the overflow is counted
and logged, never silent) and are written when the store is back.

Tracing (when on): each change gets a span from being taken to its deliveries being
written, with a child for matching; each delivery carries that span's ``traceparent``,
so its attempts join the change's trace (:class:`~netweave.observability.tracing.ChangeTraces`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable

from netweave.adapters.base import InventoryEvent
from netweave.errors import BackendUnavailableError
from netweave.notifications.matching import SubscriptionIndex
from netweave.notifications.payload import object_ref, prepare_notification
from netweave.observability import tracing
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics
from netweave.store.base import Delivery, Store, SubscriptionRecord

__all__ = ["NotificationEngine"]


def _event_key(event: InventoryEvent) -> str:
    """The identity of a change, the same on every replica that saw it."""
    digest = hashlib.sha256()
    digest.update(f"{event.kind.value}|{event.object_id}|{int(event.type)}|".encode())
    for state in (event.prior, event.post):
        digest.update(b"-" if state is None else state.model_dump_json(by_alias=True).encode())
        digest.update(b"|")
    return f"event:{digest.hexdigest()[:32]}"


_log = get_logger("netweave.notifications")

LEASE = "emitter"


class NotificationEngine:
    def __init__(
        self,
        store: Store,
        *,
        api_root: str,
        replica: str,
        lease_ttl: float = 10.0,
        replay_window: float | None = None,
        buffer_limit: int = 10_000,
        retry_delay: float = 1.0,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        visible: Callable[[str | None, InventoryEvent], bool] | None = None,
    ) -> None:
        self._store = store
        self._visible = visible
        self._api_root = api_root
        self.replica = replica
        self._lease_ttl = lease_ttl
        self._replay_window = replay_window if replay_window is not None else lease_ttl * 2
        self._buffer_limit = buffer_limit
        self._retry_delay = retry_delay
        self._clock = clock
        self._metrics = metrics
        self._pending: deque[tuple[float, InventoryEvent]] = deque()
        self._recent: deque[tuple[float, InventoryEvent]] = deque()
        self._wake = asyncio.Event()
        self._index = SubscriptionIndex()
        self._generation: int | None = None
        self._replaying: set[int] = set()
        self._lease_until = 0.0
        self._tenants_counted: set[str] = set()
        self._traces = tracing.ChangeTraces()
        self.fencing_token: int | None = None
        self.dropped = 0
        self.enqueued = 0

    @property
    def is_emitter(self) -> bool:
        return self.fencing_token is not None and self._clock() < self._lease_until

    # The view's listener ------------------------------------------------------------------

    def on_event(self, event: InventoryEvent) -> None:
        """Take one change (called synchronously by the view; never blocks)."""
        if len(self._pending) >= self._buffer_limit:
            self.dropped += 1
            if self._metrics is not None:
                self._metrics.notifications_dropped.inc()
            if self.dropped == 1 or self.dropped % 1000 == 0:
                _log.error(
                    "notification buffer full; changes are being dropped",
                    dropped=self.dropped,
                    limit=self._buffer_limit,
                )
            return
        self._pending.append((self._clock(), event))
        self._traces.taken(event)
        self._wake.set()

    # Running -------------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(self._lease_loop(), self._emit_loop())

    async def _lease_loop(self) -> None:
        while True:
            was = self.is_emitter
            started = self._clock()
            try:
                token = await self._store.acquire(LEASE, self.replica, ttl=self._lease_ttl)
            except BackendUnavailableError as exc:
                _log.warning("cannot renew the emitter lease", error=exc.detail)
            else:
                self.fencing_token = token
                self._lease_until = started + self._lease_ttl if token is not None else 0.0
                if self._metrics is not None:
                    self._metrics.emitter.set(1 if token is not None else 0)
                if token is not None and not was:
                    _log.info("this replica now emits notifications", fencing_token=token)
                    self._take_over()
            await asyncio.sleep(self._lease_ttl / 3)

    def _take_over(self) -> None:
        """Queue the changes seen while another replica held the lease (recent ones only);
        those the old holder already wrote are skipped when they are emitted."""
        horizon = self._clock() - self._replay_window
        replay = [(at, event) for at, event in self._recent if at >= horizon]
        self._recent.clear()
        self._replaying = {id(event) for _, event in replay}
        self._pending.extendleft(reversed(replay))
        if replay:
            self._wake.set()

    async def _emit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.is_emitter:
                self._remember()
                continue
            try:
                await self._emit_pending()
            except BackendUnavailableError as exc:
                _log.warning(
                    "store unavailable; changes wait in memory",
                    error=exc.detail,
                    waiting=len(self._pending),
                )
                await asyncio.sleep(self._retry_delay)
                self._wake.set()

    def _remember(self) -> None:
        horizon = self._clock() - self._replay_window
        while self._pending:
            self._recent.append(self._pending.popleft())
        while self._recent and self._recent[0][0] < horizon:
            self._traces.forget(self._recent.popleft()[1])

    async def _emit_pending(self) -> None:
        while self._pending:
            await self._refresh_index()
            batch = list(self._pending)
            keys = [_event_key(event) for _, event in batch]
            replayed = [
                key
                for key, (_, event) in zip(keys, batch, strict=True)
                if id(event) in self._replaying
            ]
            done = await self._store.recalled(replayed) if replayed else set()
            deliveries = [
                delivery
                for key, (at, event) in zip(keys, batch, strict=True)
                if key not in done
                for delivery in self._deliveries(at, event)
            ]
            with self._traces.writing([event for _, event in batch]):
                if deliveries:
                    await self._store.enqueue(deliveries)
                await self._store.remember(keys, ttl=self._replay_window * 2)
            self._replaying.difference_update(id(event) for _, event in batch)
            for _ in batch:
                self._pending.popleft()
            self.enqueued += len(deliveries)
            if self._metrics is not None:
                self._metrics.notifications_enqueued.inc(len(deliveries))

    async def _refresh_index(self) -> None:
        generation = await self._store.subscriptions_generation()
        if generation != self._generation:
            records = await self._store.list_subscriptions()
            self._index = SubscriptionIndex.build(records)
            self._generation = generation
            if self._metrics is not None:
                self._count_subscriptions(records)

    def _count_subscriptions(self, records: Iterable[SubscriptionRecord]) -> None:
        """Set the subscriptions-by-tenant gauge; a tenant whose last subscription went
        loses its series (tenants come and go: the label set stays the live ones), while
        platform subscriptions (tenant "") always have one."""
        assert self._metrics is not None
        counts = Counter(record.tenant or "" for record in records)
        counts.setdefault("", 0)
        gauge = self._metrics.subscriptions
        for tenant in self._tenants_counted - counts.keys():
            gauge.remove(tenant)
        for tenant, count in counts.items():
            gauge.labels(tenant).set(count)
        self._tenants_counted = set(counts)

    def _deliveries(self, at: float, event: InventoryEvent) -> list[Delivery]:
        with self._traces.change(event, "notification event", lambda: _describe(event)):
            with tracing.child_span("notification match", kind=tracing.SpanKind.INTERNAL):
                matches = self._index.match(event)
                if self._visible is not None:
                    visible = self._visible
                    matches = [s for s in matches if s.tenant is None or visible(s.tenant, event)]
            tracing.set_attributes(lambda: {"netweave.notification.matches": len(matches)})
            if not matches:
                return []
            return self._rendered(at, event, matches, tracing.traceparent())

    def _rendered(
        self,
        at: float,
        event: InventoryEvent,
        matches: list[SubscriptionRecord],
        traceparent: str | None,
    ) -> list[Delivery]:
        prepared = prepare_notification(event, object_ref=object_ref(self._api_root, event))
        found = []
        for subscription in matches:
            notification_id = str(uuid.uuid4())
            body = prepared.render(subscription, notification_id=notification_id)
            found.append(
                Delivery(
                    subscription_id=subscription.subscription_id,
                    notification_id=notification_id,
                    callback=subscription.callback,
                    body=body,
                    event_time=at,
                    traceparent=traceparent,
                )
            )
        return found


def _describe(event: InventoryEvent) -> dict[str, str]:
    """The attributes of a change's span."""
    return {
        "netweave.object.kind": event.kind.value,
        "netweave.event.type": event.type.name,
        "netweave.object.id": event.object_id,
    }
