"""The store of a single gateway process: everything in memory, nothing survives a restart.

It keeps the outbox semantics of :mod:`netweave.store.base` exactly, so it is both the
embedded default and the reference the Redis store is tested against:

* each subscription has a FIFO queue; its head is the only delivery that can be handed
  out, and only while no delivery of that subscription is in flight;
* subscriptions with a due head wait in a heap ordered by (due time, arrival), so
  :meth:`InMemoryStore.take` serves them round-robin: a subscription that was just served
  goes behind every one already waiting;
* :meth:`~InMemoryStore.take` sets ``first_attempt_at`` on a delivery's first hand-out;
  ``retry_later`` and ``dead_letter`` each record one failed attempt (``attempts`` + 1,
  counted from the stored delivery, not the one passed in) and its error (``error``; for a
  dead letter the ``last_error`` of the delivery passed in, if any);
* ``replay`` re-enqueues a dead letter as a fresh delivery (new id, no attempts) at the
  tail of its subscription's queue, and refuses when that subscription is gone (an
  inventory subscription, or one :meth:`~InMemoryStore.also_subscribed` knows: alarm
  subscriptions share the outbox);
* ``complete``, ``retry_later`` and ``dead_letter`` act only on the delivery in flight for
  its subscription; anything else (a removed subscription, a worker whose visibility
  timeout passed and whose delivery was completed by another) is a no-op.

Everything runs on the event loop: no threads, no locks; ``take(wait=...)`` sleeps on an
event that every change sets, or until the next due time or visibility deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from netweave.errors import ConflictError
from netweave.store.base import DeadLetter, Delivery, SubscriptionRecord

__all__ = ["InMemoryStore"]

#: the shortest sleep of a waiting take, so rounding can never turn it into a busy loop
_MIN_PAUSE = 0.001


@dataclass(slots=True)
class _InFlight:
    delivery_id: str
    deadline: float
    worker: str


@dataclass(slots=True)
class _LeaseState:
    holder: str
    expires: float
    token: int


class InMemoryStore:
    """Subscriptions, outbox and leases of one process (implements ``Store``)."""

    def __init__(
        self, *, visibility_timeout: float = 30.0, clock: Callable[[], float] = time.time
    ) -> None:
        if visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        self._visibility_timeout = visibility_timeout
        self._clock = clock
        self._memo: dict[str, float] = {}
        self._subscriptions: dict[str, SubscriptionRecord] = {}
        self._unique: dict[tuple[str | None, str, str | None], str] = {}
        self._generation = 0
        self._queues: dict[str, deque[Delivery]] = {}
        self._ready: list[tuple[float, int, str]] = []  # heap of (due, seq, subscription)
        self._ready_at: dict[str, tuple[float, int]] = {}  # the valid heap entry per subscription
        self._seq = itertools.count()
        self._inflight: dict[str, _InFlight] = {}
        self._dead: dict[str, DeadLetter] = {}
        self._leases: dict[str, _LeaseState] = {}
        self._epochs: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._subscribed_elsewhere: list[Callable[[str], bool]] = []

    def also_subscribed(self, exists: Callable[[str], bool]) -> None:
        """Count the ids ``exists`` knows as subscriptions too: other kinds of subscription
        (alarm subscriptions) whose deliveries share this outbox can have their dead
        letters replayed."""
        self._subscribed_elsewhere.append(exists)

    def _subscribed(self, subscription_id: str) -> bool:
        return subscription_id in self._subscriptions or any(
            exists(subscription_id) for exists in self._subscribed_elsewhere
        )

    # -- subscriptions -------------------------------------------------------------------

    async def add_subscription(self, record: SubscriptionRecord) -> None:
        if record.subscription_id in self._subscriptions:
            raise ConflictError(f"subscription {record.subscription_id} exists")
        unique = (record.tenant, record.callback, record.filter or None)
        if unique in self._unique:
            raise ConflictError(
                f"subscription {self._unique[unique]} has the same callback and filter"
            )
        self._subscriptions[record.subscription_id] = record
        self._unique[unique] = record.subscription_id
        self._generation += 1

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        return self._subscriptions.get(subscription_id)

    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        return sorted(self._subscriptions.values(), key=lambda record: record.created_at)

    async def replace_subscription(self, record: SubscriptionRecord) -> bool:
        current = self._subscriptions.get(record.subscription_id)
        if current is None:
            return False
        unique = (record.tenant, record.callback, record.filter or None)
        owner = self._unique.get(unique, record.subscription_id)
        if owner != record.subscription_id:
            raise ConflictError(f"subscription {owner} has the same callback and filter")
        released = (current.tenant, current.callback, current.filter or None)
        if self._unique.get(released) == record.subscription_id:
            del self._unique[released]
        self._unique[unique] = record.subscription_id
        self._subscriptions[record.subscription_id] = record
        self._generation += 1
        return True

    async def remove_subscription(self, subscription_id: str) -> bool:
        record = self._subscriptions.pop(subscription_id, None)
        self._queues.pop(subscription_id, None)
        self._ready_at.pop(subscription_id, None)
        self._inflight.pop(subscription_id, None)
        if record is None:
            return False
        self._unique.pop((record.tenant, record.callback, record.filter or None), None)
        self._generation += 1
        return True

    async def subscriptions_generation(self) -> int:
        return self._generation

    # -- outbox --------------------------------------------------------------------------

    async def enqueue(self, deliveries: Sequence[Delivery]) -> list[str]:
        now = self._clock()
        ids: list[str] = []
        for delivery in deliveries:
            delivery_id = uuid.uuid4().hex
            self._append(replace(delivery, delivery_id=delivery_id), now=now)
            ids.append(delivery_id)
        if ids:
            self._notify()
        return ids

    async def take(self, worker: str, *, limit: int, wait: float) -> list[Delivery]:
        if limit <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(wait, 0.0)
        while True:
            taken = self._take_due(worker, limit)
            remaining = deadline - loop.time()
            if taken or remaining <= 0:
                return taken
            pause = remaining
            next_change = self._next_change()
            if next_change is not None:
                pause = min(pause, max(next_change - self._clock(), _MIN_PAUSE))
            changed = self._changed
            with contextlib.suppress(TimeoutError):  # woken or timed out: look again
                async with asyncio.timeout(pause):
                    await changed.wait()

    async def complete(self, delivery: Delivery) -> None:
        queue = self._release(delivery)
        if queue is None:
            return
        queue.popleft()
        self._after_head_removed(delivery.subscription_id, queue)

    async def retry_later(self, delivery: Delivery, *, at: float, error: str) -> None:
        queue = self._release(delivery)
        if queue is None:
            return
        head = queue[0]
        queue[0] = replace(
            head,
            attempts=head.attempts + 1,
            first_attempt_at=_first(head, delivery, self._clock()),
            last_error=error,
        )
        self._schedule(delivery.subscription_id, at)
        self._notify()

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        queue = self._release(delivery)
        if queue is None:
            return
        now = self._clock()
        head = queue.popleft()
        dead = replace(
            head,
            attempts=head.attempts + 1,
            first_attempt_at=_first(head, delivery, now),
            last_error=delivery.last_error if delivery.last_error is not None else head.last_error,
        )
        dead_letter_id = uuid.uuid4().hex
        self._dead[dead_letter_id] = DeadLetter(
            delivery=dead, reason=reason, dead_at=now, dead_letter_id=dead_letter_id
        )
        self._after_head_removed(delivery.subscription_id, queue)

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        return list(itertools.islice(self._dead.values(), max(limit, 0)))

    async def replay(self, dead_letter_id: str) -> bool:
        dead = self._dead.get(dead_letter_id)
        if dead is None or not self._subscribed(dead.delivery.subscription_id):
            return False
        del self._dead[dead_letter_id]
        fresh = replace(
            dead.delivery,
            delivery_id=uuid.uuid4().hex,
            attempts=0,
            first_attempt_at=None,
            last_error=None,
        )
        self._append(fresh, now=self._clock())
        self._notify()
        return True

    async def depth(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    # -- lease ---------------------------------------------------------------------------

    async def acquire(self, name: str, holder: str, *, ttl: float) -> int | None:
        now = self._clock()
        lease = self._leases.get(name)
        if lease is not None and lease.expires > now:
            if lease.holder != holder:
                return None
            lease.expires = now + ttl
            return lease.token
        token = self._epochs.get(name, 0) + 1
        self._epochs[name] = token
        self._leases[name] = _LeaseState(holder=holder, expires=now + ttl, token=token)
        return token

    async def release(self, name: str, holder: str) -> None:
        lease = self._leases.get(name)
        if lease is not None and lease.holder == holder:
            del self._leases[name]

    async def holder(self, name: str) -> str | None:
        lease = self._leases.get(name)
        if lease is None or lease.expires <= self._clock():
            return None
        return lease.holder

    # -- lifecycle -----------------------------------------------------------------------

    # -- memo --------------------------------------------------------------------------

    async def remember(self, keys: Sequence[str], *, ttl: float) -> None:
        now = self._clock()
        self._memo = {key: until for key, until in self._memo.items() if until > now}
        for key in keys:
            self._memo[key] = now + ttl

    async def recalled(self, keys: Sequence[str]) -> set[str]:
        now = self._clock()
        return {key for key in keys if self._memo.get(key, 0.0) > now}

    async def ping(self) -> None:
        """Memory is always reachable."""

    async def aclose(self) -> None:
        self._notify()

    # -- internals -----------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every waiting take; later waiters wait on a fresh event."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _append(self, delivery: Delivery, *, now: float) -> None:
        subscription_id = delivery.subscription_id
        queue = self._queues.setdefault(subscription_id, deque())
        queue.append(delivery)
        if subscription_id not in self._inflight and subscription_id not in self._ready_at:
            self._schedule(subscription_id, now)

    def _schedule(self, subscription_id: str, due: float) -> None:
        """Make the subscription's head available from ``due`` on (replacing any earlier
        schedule), behind every subscription scheduled before it for the same time."""
        entry = (due, next(self._seq))
        self._ready_at[subscription_id] = entry
        heapq.heappush(self._ready, (*entry, subscription_id))

    def _expire(self, now: float) -> None:
        """Re-offer the deliveries whose visibility deadline passed (their worker vanished)."""
        expired = [(s, f.deadline) for s, f in self._inflight.items() if f.deadline <= now]
        for subscription_id, deadline in expired:
            del self._inflight[subscription_id]
            self._schedule(subscription_id, deadline)

    def _take_due(self, worker: str, limit: int) -> list[Delivery]:
        now = self._clock()
        self._expire(now)
        taken: list[Delivery] = []
        while self._ready and len(taken) < limit:
            due, seq, subscription_id = self._ready[0]
            if self._ready_at.get(subscription_id) != (due, seq):
                heapq.heappop(self._ready)  # superseded by a later schedule
                continue
            if due > now:
                break
            heapq.heappop(self._ready)
            del self._ready_at[subscription_id]
            queue = self._queues.get(subscription_id)
            if not queue:
                continue
            head = queue[0]
            if head.first_attempt_at is None:
                head = queue[0] = replace(head, first_attempt_at=now)
            self._inflight[subscription_id] = _InFlight(
                delivery_id=head.delivery_id,
                deadline=now + self._visibility_timeout,
                worker=worker,
            )
            taken.append(head)
        return taken

    def _next_change(self) -> float | None:
        """The earliest due time or visibility deadline to come, if any."""
        while self._ready:
            due, seq, subscription_id = self._ready[0]
            if self._ready_at.get(subscription_id) == (due, seq):
                break
            heapq.heappop(self._ready)  # superseded by a later schedule
        times = [flight.deadline for flight in self._inflight.values()]
        if self._ready:
            times.append(self._ready[0][0])
        return min(times, default=None)

    def _release(self, delivery: Delivery) -> deque[Delivery] | None:
        """End the flight of ``delivery``; its queue, or None if it is not in flight."""
        flight = self._inflight.get(delivery.subscription_id)
        if flight is None or flight.delivery_id != delivery.delivery_id:
            return None
        del self._inflight[delivery.subscription_id]
        return self._queues[delivery.subscription_id]

    def _after_head_removed(self, subscription_id: str, queue: deque[Delivery]) -> None:
        if queue:
            self._schedule(subscription_id, self._clock())
        else:
            del self._queues[subscription_id]
        self._notify()


def _first(head: Delivery, reported: Delivery, now: float) -> float:
    """When the first attempt of the head delivery was made."""
    if head.first_attempt_at is not None:
        return head.first_attempt_at
    return reported.first_attempt_at if reported.first_attempt_at is not None else now
