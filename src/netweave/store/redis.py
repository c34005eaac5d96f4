"""The store shared by gateway replicas: Redis (standalone or Sentinel), via redis-py asyncio.

Every key is under one prefix; :mod:`netweave.store.keys` draws the layout and holds the Lua
scripts.  Every change that touches more than one key is one script, so it is atomic across
replicas.

Subscriptions
    ``add`` claims the digest of callback+filter in a hash (HSETNX-like, inside the script)
    before writing the record, so two replicas racing with the same pair cannot both win.
    ``replace`` releases the old digest and claims the new one in the same script (unless
    another id holds it), rewrites the record and bumps the generation; the outbox
    stream of the subscription is not touched.

Outbox
    Each subscription has its own stream with the consumer group ``workers``.  A
    subscription with work to hand out is in the ``due`` sorted set (scored by when its head
    is due); one with a delivery in flight is in ``inflight`` instead (scored by the
    visibility deadline).  ``take`` is one script: it moves subscriptions whose deadline
    passed back to ``due``, then for up to ``limit`` due subscriptions, oldest due first,
    claims the head of the stream -- with XAUTOCLAIM when the head is already pending in
    the group (a retry, or a delivery whose worker or replica vanished), else with
    XREADGROUP -- and moves the subscription to ``inflight``.  As a subscription is never
    in ``due`` while in ``inflight``, at most one delivery per subscription is in flight
    across all replicas, and the pending-entries list of a stream never holds more than its
    head, so the order of the stream is the order of delivery.  ``complete`` is XACK +
    XDEL and puts the subscription back in ``due`` (behind those already waiting) if more
    is queued; ``retry_later`` leaves the head pending and scores the subscription at
    ``at``.  Attempt counts live in a small per-subscription hash, as stream entries are
    immutable.

Time
    Due times and visibility deadlines use the store's ``clock`` (the replicas' clocks,
    assumed NTP-synchronised); lease expiry uses Redis' own clock (``PX``).

Failures
    Connection errors, timeouts and a read-only (failing-over) server raise
    :class:`~netweave.errors.BackendUnavailableError`, which the API answers with 503.
    This store does not support Redis Cluster (the scripts build per-subscription keys).

Tracing
    Each public call (``_guarded``) is a client span ``redis <method>`` when a span is
    current (a request, a notification); the background polls make no traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from netweave.errors import BackendUnavailableError, ConflictError
from netweave.observability import tracing
from netweave.store.base import DeadLetter, Delivery, SubscriptionRecord
from netweave.store.keys import (
    ACQUIRE,
    ADD_SUBSCRIPTION,
    COMPLETE,
    DEAD_LETTER,
    ENQUEUE,
    GROUP,
    RELEASE,
    REMOVE_SUBSCRIPTION,
    REPLACE_SUBSCRIPTION,
    REPLAY,
    RETRY_LATER,
    TAKE,
    Keys,
)

__all__ = ["RedisStore"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: deliveries per enqueue script call (one round trip each)
_ENQUEUE_CHUNK = 1000
#: the shortest sleep of a waiting take, so it can never turn into a busy loop
_MIN_PAUSE = 0.005
_SENTINEL_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel", "sentinel"})


def _guarded(method: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Translate "Redis cannot be reached" into :class:`BackendUnavailableError`, under a
    client span when tracing is on and a span is current."""
    operation = method.__name__.lstrip("_")
    span_name = f"redis {operation}"
    attributes = {"db.system.name": "redis", "db.operation.name": operation}

    @functools.wraps(method)
    async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with tracing.child_span(span_name, attributes):
            try:
                return await method(*args, **kwargs)
            except RedisTimeoutError as exc:
                raise BackendUnavailableError("store unavailable: Redis timed out") from exc
            except ReadOnlyError as exc:
                raise BackendUnavailableError(
                    "store unavailable: Redis is read-only (failover in progress?)"
                ) from exc
            except RedisConnectionError as exc:
                raise BackendUnavailableError("store unavailable: cannot reach Redis") from exc

    return guarded


class RedisStore:
    """Subscriptions, outbox and leases in Redis, shared by replicas (implements ``Store``).

    The store owns ``client`` (created with ``decode_responses=False``) and closes it in
    :meth:`aclose`.  ``take(wait=...)`` wakes at once for deliveries this instance
    enqueued, completed or rescheduled, and polls Redis every ``poll_interval`` seconds
    for those of other replicas.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "netweave",
        visibility_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.05,
        owned: Sequence[Redis] = (),
    ) -> None:
        if visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._redis = client
        self._owned = list(owned)  # more clients to close with the store (Sentinel's)
        self.keys = Keys(prefix)
        self._visibility_timeout = visibility_timeout
        self._clock = clock
        self._poll_interval = poll_interval
        self._changed = asyncio.Event()
        script = client.register_script
        self._add_subscription = script(ADD_SUBSCRIPTION)
        self._remove_subscription = script(REMOVE_SUBSCRIPTION)
        self._replace_subscription = script(REPLACE_SUBSCRIPTION)
        self._enqueue = script(ENQUEUE)
        self._take = script(TAKE)
        self._complete = script(COMPLETE)
        self._dead_letter = script(DEAD_LETTER)
        self._retry_later = script(RETRY_LATER)
        self._replay = script(REPLAY)
        self._acquire = script(ACQUIRE)
        self._release = script(RELEASE)

    @property
    def client(self) -> Redis:
        """The Redis client (owned by the store): other keepers of shared state use it too."""
        return self._redis

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "netweave",
        visibility_timeout: float = 30.0,
        sentinel_master: str | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.05,
        socket_timeout: float = 5.0,
    ) -> RedisStore:
        """A store on ``redis://``, ``rediss://`` or ``unix://`` URLs, or through Sentinel:
        ``redis+sentinel://[user:password@]host:port[,host:port...]/db?master=NAME`` (or any
        URL listing the sentinels plus ``sentinel_master``).  Connects lazily."""
        options: dict[str, Any] = {
            "decode_responses": False,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": min(socket_timeout, 2.0),
            # a few quick retries, then 503: callers retry later, they do not hang
            "retry": Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), retries=3),
        }
        scheme = url.partition("://")[0].lower()
        if sentinel_master is None and scheme not in _SENTINEL_SCHEMES:
            client = Redis.from_url(url, **options)
            return cls(
                client,
                prefix=prefix,
                visibility_timeout=visibility_timeout,
                clock=clock,
                poll_interval=poll_interval,
            )
        sentinel, master = _sentinel(url, sentinel_master, options)
        return cls(
            master,
            prefix=prefix,
            visibility_timeout=visibility_timeout,
            clock=clock,
            poll_interval=poll_interval,
            owned=sentinel.sentinels,
        )

    # -- subscriptions -------------------------------------------------------------------

    @_guarded
    async def add_subscription(self, record: SubscriptionRecord) -> None:
        k = self.keys
        reply = await self._add_subscription(
            keys=[
                k.subscriptions,
                k.subscription_order,
                k.subscription_unique,
                k.subscription_digest,
                k.generation,
            ],
            args=[record.subscription_id, orjson.dumps(record.to_json()), _digest(record)],
        )
        status = int(reply[0])
        if status == 2:
            raise ConflictError(f"subscription {record.subscription_id} exists")
        if status == 0:
            owner = reply[1].decode()
            raise ConflictError(f"subscription {owner} has the same callback and filter")

    @_guarded
    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        raw = await self._redis.hget(self.keys.subscriptions, subscription_id)
        return None if raw is None else SubscriptionRecord.from_json(orjson.loads(raw))

    @_guarded
    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrange(self.keys.subscription_order, 0, -1)
            pipe.hgetall(self.keys.subscriptions)
            order, raw = await pipe.execute()
        rank = {subscription_id: i for i, subscription_id in enumerate(order)}
        ordered = sorted(raw.items(), key=lambda item: rank.get(item[0], len(rank)))
        records = [SubscriptionRecord.from_json(orjson.loads(value)) for _, value in ordered]
        return sorted(records, key=lambda record: record.created_at)

    @_guarded
    async def replace_subscription(self, record: SubscriptionRecord) -> bool:
        k = self.keys
        reply = await self._replace_subscription(
            keys=[k.subscriptions, k.subscription_unique, k.subscription_digest, k.generation],
            args=[record.subscription_id, orjson.dumps(record.to_json()), _digest(record)],
        )
        status = int(reply[0])
        if status == 2:
            owner = reply[1].decode()
            raise ConflictError(f"subscription {owner} has the same callback and filter")
        return status == 1

    @_guarded
    async def remove_subscription(self, subscription_id: str) -> bool:
        k = self.keys
        removed = await self._remove_subscription(
            keys=[
                k.subscriptions,
                k.subscription_order,
                k.subscription_unique,
                k.subscription_digest,
                k.generation,
                k.due,
                k.inflight,
                k.depth,
                k.outbox(subscription_id),
                k.attempt(subscription_id),
            ],
            args=[subscription_id],
        )
        return bool(removed)

    @_guarded
    async def subscriptions_generation(self) -> int:
        return int(await self._redis.get(self.keys.generation) or 0)

    # -- outbox --------------------------------------------------------------------------

    @_guarded
    async def enqueue(self, deliveries: Sequence[Delivery]) -> list[str]:
        k = self.keys
        ids: list[str] = []
        for start in range(0, len(deliveries), _ENQUEUE_CHUNK):
            args: list[Any] = [k.outbox_prefix, GROUP, self._clock()]
            for delivery in deliveries[start : start + _ENQUEUE_CHUNK]:
                args.extend((delivery.subscription_id, _meta(delivery), delivery.body))
            reply = await self._enqueue(keys=[k.due, k.inflight, k.depth], args=args)
            ids.extend(raw.decode() for raw in reply)
        if ids:
            self._notify()
        return ids

    async def take(self, worker: str, *, limit: int, wait: float) -> list[Delivery]:
        if limit <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(wait, 0.0)
        while True:
            changed = self._changed  # before asking, so no local change is missed
            taken, next_change = await self._take_once(worker, limit)
            remaining = deadline - loop.time()
            if taken or remaining <= 0:
                return taken
            pause = min(remaining, self._poll_interval)
            if next_change is not None:
                pause = min(pause, max(next_change - self._clock(), _MIN_PAUSE))
            with contextlib.suppress(TimeoutError):  # woken or timed out: look again
                async with asyncio.timeout(pause):
                    await changed.wait()

    @_guarded
    async def _take_once(self, worker: str, limit: int) -> tuple[list[Delivery], float | None]:
        """One take script: the deliveries taken, and when the next may become due."""
        k = self.keys
        now = self._clock()
        reply = await self._take(
            keys=[k.due, k.inflight],
            args=[
                k.outbox_prefix,
                k.attempt_prefix,
                GROUP,
                worker,
                now,
                now + self._visibility_timeout,
                limit,
            ],
        )
        next_due, next_deadline, *items = reply
        times = [float(raw) for raw in (next_due, next_deadline) if raw is not None]
        return [_taken(item) for item in items], min(times, default=None)

    @_guarded
    async def complete(self, delivery: Delivery) -> None:
        done = await self._complete(
            keys=self._flight_keys(delivery),
            args=[GROUP, delivery.subscription_id, delivery.delivery_id, self._clock()],
        )
        if done:
            self._notify()

    @_guarded
    async def retry_later(self, delivery: Delivery, *, at: float, error: str) -> None:
        done = await self._retry_later(
            keys=self._flight_keys(delivery),
            args=[GROUP, delivery.subscription_id, delivery.delivery_id, at, error],
        )
        if done:
            self._notify()

    @_guarded
    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        done = await self._dead_letter(
            keys=[*self._flight_keys(delivery), self.keys.dead],
            args=[
                GROUP,
                delivery.subscription_id,
                delivery.delivery_id,
                self._clock(),
                reason,
                "0" if delivery.last_error is None else "1",
                delivery.last_error or "",
            ],
        )
        if done:
            self._notify()

    @_guarded
    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self._redis.xrange(self.keys.dead, count=limit),
        )
        return [_dead_letter(entry_id.decode(), fields) for entry_id, fields in entries]

    @_guarded
    async def replay(self, dead_letter_id: str) -> bool:
        k = self.keys
        new_id = await self._replay(
            keys=[k.dead, k.due, k.inflight, k.depth, k.subscriptions, k.alarm_subscriptions],
            args=[k.outbox_prefix, GROUP, dead_letter_id, self._clock()],
        )
        if new_id is None:
            return False
        self._notify()
        return True

    @_guarded
    async def depth(self) -> int:
        return int(await self._redis.get(self.keys.depth) or 0)

    # -- lease ---------------------------------------------------------------------------

    @_guarded
    async def acquire(self, name: str, holder: str, *, ttl: float) -> int | None:
        token = await self._acquire(
            keys=[self.keys.lease_holder(name), self.keys.lease_epoch(name)],
            args=[holder, max(1, round(ttl * 1000))],
        )
        return None if token is None else int(token)

    @_guarded
    async def release(self, name: str, holder: str) -> None:
        await self._release(keys=[self.keys.lease_holder(name)], args=[holder])

    @_guarded
    async def holder(self, name: str) -> str | None:
        raw = await self._redis.get(self.keys.lease_holder(name))
        return raw.decode() if isinstance(raw, bytes) else raw

    # -- memo --------------------------------------------------------------------------

    @_guarded
    async def remember(self, keys: Sequence[str], *, ttl: float) -> None:
        if not keys:
            return
        milliseconds = max(1, round(ttl * 1000))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(self.keys.memo(key), b"1", px=milliseconds)
            await pipe.execute()

    @_guarded
    async def recalled(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        found = await self._redis.mget([self.keys.memo(key) for key in keys])
        return {key for key, value in zip(keys, found, strict=True) if value is not None}

    # -- lifecycle -----------------------------------------------------------------------

    @_guarded
    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        self._notify()
        await self._redis.aclose()
        for client in self._owned:
            await client.aclose()

    # -- internals -----------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake this instance's waiting takes; later waiters wait on a fresh event."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _flight_keys(self, delivery: Delivery) -> list[str]:
        k = self.keys
        subscription_id = delivery.subscription_id
        return [k.due, k.inflight, k.depth, k.outbox(subscription_id), k.attempt(subscription_id)]


def _digest(record: SubscriptionRecord) -> str:
    """What makes a subscription unique: its tenant, callback and filter (no filter == empty).

    Platform subscriptions keep the digest they had before tenants existed.
    """
    unique: list[str | None] = [record.callback, record.filter or None]
    if record.tenant is not None:
        unique.append(record.tenant)
    return hashlib.sha256(orjson.dumps(unique)).hexdigest()


def _meta(delivery: Delivery) -> bytes:
    """The immutable part of a delivery but its body, as stored in the stream entry
    (``traceparent`` only when there is one: records written before it read as None)."""
    meta: dict[str, Any] = {
        "subscription_id": delivery.subscription_id,
        "notification_id": delivery.notification_id,
        "callback": delivery.callback,
        "event_time": delivery.event_time,
    }
    if delivery.traceparent is not None:
        meta["traceparent"] = delivery.traceparent
    return orjson.dumps(meta)


def _delivery(
    fields: dict[bytes, bytes],
    delivery_id: str,
    *,
    attempts: bytes | None,
    first: bytes | None,
    error: bytes | None,
) -> Delivery:
    meta = orjson.loads(fields[b"meta"])
    return Delivery(
        subscription_id=meta["subscription_id"],
        notification_id=meta["notification_id"],
        callback=meta["callback"],
        body=bytes(fields[b"body"]),
        event_time=float(meta["event_time"]),
        delivery_id=delivery_id,
        attempts=int(attempts or 0),
        first_attempt_at=None if first is None else float(first),
        last_error=None if error is None else error.decode(),
        traceparent=meta.get("traceparent"),
    )


def _taken(item: list[Any]) -> Delivery:
    """A delivery as the take script returns it."""
    _subscription, entry_id, flat, attempts, first, error = item
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return _delivery(fields, entry_id.decode(), attempts=attempts, first=first, error=error)


def _dead_letter(dead_letter_id: str, fields: dict[bytes, bytes]) -> DeadLetter:
    delivery = _delivery(
        fields,
        fields[b"id"].decode(),
        attempts=fields[b"attempts"],
        first=fields.get(b"first"),
        error=fields.get(b"error"),
    )
    return DeadLetter(
        delivery=delivery,
        reason=fields[b"reason"].decode(),
        dead_at=float(fields[b"dead_at"]),
        dead_letter_id=dead_letter_id,
    )


def _sentinel(url: str, master: str | None, options: dict[str, Any]) -> tuple[Sentinel, Redis]:
    """Parse a Sentinel URL; the Sentinel and a client of the master it names."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    master = master or query.get("master")
    if not master:
        raise ValueError("a Sentinel URL needs ?master=NAME (or sentinel_master)")
    sentinels = [_host_port(host, default_port=26379) for host in hosts.split(",") if host]
    if not sentinels:
        raise ValueError(f"no sentinel address in {parts.scheme}://…")
    db = parts.path.strip("/") or query.get("db", "0")
    if not db.isdigit():
        raise ValueError(f"invalid database number {db!r} in the Redis URL")
    connection: dict[str, Any] = dict(options, db=int(db))
    if username:
        connection["username"] = unquote(username)
    if password:
        connection["password"] = unquote(password)
    if parts.scheme.lower().startswith("rediss"):
        connection["ssl"] = True
    sentinel_options = {
        key: options[key] for key in ("socket_timeout", "socket_connect_timeout", "retry")
    }
    if "sentinel_password" in query:
        sentinel_options["password"] = query["sentinel_password"]
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels, sentinel_kwargs=sentinel_options, **connection
    )
    client: Redis = sentinel.master_for(master, redis_class=Redis)
    return sentinel, client


def _host_port(address: str, *, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = address.partition(":")
    if port and not port.isdigit():
        raise ValueError(f"invalid port in sentinel address {address!r}")
    return unquote(host), int(port) if port else default_port
