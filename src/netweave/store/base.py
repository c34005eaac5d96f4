"""The store protocols and the records they keep.

Delivery model
--------------
Every matched (event, subscription) pair becomes one :class:`Delivery` written to the
:class:`Outbox` before any attempt is made.  Deliveries of one subscription are handed
out strictly in the order they were enqueued and never two at a time, so a subscriber
sees its notifications in order; deliveries of different subscriptions are independent,
so one slow subscriber never delays another.  A delivery handed out and neither
completed, rescheduled nor dead-lettered within ``visibility_timeout`` seconds (its
worker or replica died) is handed out again: delivery is at-least-once, and exactly once
in normal operation.

Outbox life of a delivery::

    enqueue ──▶ pending ──take()──▶ in flight ──complete()──▶ gone
                  ▲                     │
                  └──retry_later(at)────┤
                                        └──dead_letter()──▶ dead ──replay()──▶ pending
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DeadLetter",
    "Delivery",
    "Lease",
    "Memo",
    "Outbox",
    "Store",
    "SubscriptionRecord",
    "SubscriptionStore",
]


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """An inventory subscription as stored (the API shows a subset)."""

    subscription_id: str
    callback: str
    consumer_subscription_id: str | None = None
    filter: str | None = None
    created_at: float = 0.0
    #: per-subscription HMAC key for notification signatures; never shown by the API
    secret: str | None = None
    #: the tenant that created it (None: a platform principal); it sees only that tenant's
    #: objects, and only that tenant's principals see it
    tenant: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubscriptionRecord:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification to one subscriber, rendered once when the event was matched."""

    subscription_id: str
    notification_id: str  #: UUID of the notification; stable across retries
    callback: str
    body: bytes  #: the JSON notification, exactly as it will be POSTed
    event_time: float  #: when the gateway observed the change (epoch seconds)
    delivery_id: str = ""  #: assigned by the outbox on enqueue
    attempts: int = 0  #: attempts made so far
    first_attempt_at: float | None = None
    last_error: str | None = None
    #: W3C ``traceparent`` of the span that matched it (tracing on): its delivery attempts
    #: are children of that span, whichever worker or replica makes them
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that was given up on, with why; an operator can replay it."""

    delivery: Delivery
    reason: str
    dead_at: float
    dead_letter_id: str = field(default="")


@runtime_checkable
class SubscriptionStore(Protocol):
    async def add_subscription(self, record: SubscriptionRecord) -> None:
        """Store a new subscription.

        Raises :class:`netweave.errors.ConflictError` when a subscription of the same
        tenant with the same callback and filter exists (atomically: two replicas racing
        cannot both win).
        """

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None: ...

    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        """Every subscription, oldest first."""

    async def replace_subscription(self, record: SubscriptionRecord) -> bool:
        """Rewrite the stored subscription ``record.subscription_id`` as ``record``.

        One atomic step: the old callback+filter pair is released and the new one claimed,
        so no other subscription can take either in between.  Raises
        :class:`netweave.errors.ConflictError` (and changes nothing) when ANOTHER
        subscription of the same tenant has the new callback and filter; returns False
        when the subscription does not exist.  Its place in the listing order is kept,
        and so are its pending deliveries: a :class:`Delivery` carries the callback (and
        body) it was matched for, so those already queued still go there, and only
        changes matched after the replacement use the new callback and filter.
        """

    async def remove_subscription(self, subscription_id: str) -> bool:
        """Delete it and drop its pending deliveries; False if it did not exist."""

    async def subscriptions_generation(self) -> int:
        """A number that changes whenever a subscription is added, replaced or removed
        anywhere (every replica's notification engine rebuilds its index then)."""


@runtime_checkable
class Outbox(Protocol):
    async def enqueue(self, deliveries: Sequence[Delivery]) -> list[str]:
        """Persist deliveries (durably, before returning); returns their delivery ids."""

    async def take(self, worker: str, *, limit: int, wait: float) -> list[Delivery]:
        """Deliveries due now, at most one per subscription and none of a subscription
        that has one in flight; waits up to ``wait`` seconds for one to become due."""

    async def complete(self, delivery: Delivery) -> None:
        """The subscriber accepted it: forget it and release the subscription."""

    async def retry_later(self, delivery: Delivery, *, at: float, error: str) -> None:
        """Keep it at the head of its subscription's queue, due again at ``at``."""

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        """Give up on it (it moves to the dead letters) and release the subscription."""

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]: ...

    async def replay(self, dead_letter_id: str) -> bool:
        """Put a dead letter back at the tail of its subscription's queue."""

    async def depth(self) -> int:
        """Deliveries pending or in flight."""


@runtime_checkable
class Lease(Protocol):
    async def acquire(self, name: str, holder: str, *, ttl: float) -> int | None:
        """Take or renew the lease ``name`` for ``holder``; returns a fencing token that
        grows with every change of holder, or None while someone else holds it."""

    async def release(self, name: str, holder: str) -> None: ...

    async def holder(self, name: str) -> str | None: ...


@runtime_checkable
class Memo(Protocol):
    """Short-lived marks shared by replicas (which changes have been notified)."""

    async def remember(self, keys: Sequence[str], *, ttl: float) -> None:
        """Mark ``keys`` for ``ttl`` seconds."""

    async def recalled(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that are marked."""


class Store(SubscriptionStore, Outbox, Lease, Memo, Protocol):
    """Everything a gateway keeps durably."""

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    async def aclose(self) -> None: ...
