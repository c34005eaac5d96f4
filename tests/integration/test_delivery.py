"""Notification delivery against real HTTP receivers on loopback.

A small ASGI receiver runs under uvicorn in a thread (one per module, on a free port).  It
records every POST (headers, body, arrival time, the status it answered) and answers
each path from a script: fail N times then succeed, always 400, sleep, 429 with
``Retry-After``, redirect.  Each test uses its own paths.  The outbox is the real
:class:`~netweave.store.memory.InMemoryStore`; the :class:`DeliveryService` runs as a task
with a pooled ``httpx.AsyncClient``.  Every wait is a bounded poll (:func:`eventually`);
the only fixed sleeps are the short windows in which nothing may happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from tests.servers import free_port
from tests.webhooks import Receiver, Reply, running_receiver

from netweave import __version__
from netweave.notifications.delivery import DeliveryMetrics, DeliveryService, failure_reason
from netweave.notifications.retry import RetryPolicy, parse_retry_after
from netweave.notifications.signing import verify
from netweave.store.base import Delivery, SubscriptionRecord
from netweave.store.memory import InMemoryStore

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(max_attempts=10, initial_backoff=0.05, max_backoff=1.0, jitter=0.0, timeout=5.0)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


# Helpers ----------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, within: float = 5.0, what: str = ""
) -> None:
    """Poll ``check`` (sync or async) until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}"
        await asyncio.sleep(0.01)


def unique_path(name: str) -> str:
    return f"/{name}/{uuid.uuid4().hex[:8]}"


def notification(subscription_id: str, callback: str, **content: Any) -> Delivery:
    notification_id = str(uuid.uuid4())
    body = orjson.dumps({"notificationId": notification_id, **content})
    return Delivery(
        subscription_id=subscription_id,
        notification_id=notification_id,
        callback=callback,
        body=body,
        event_time=time.time(),
    )


async def subscribe(store: InMemoryStore, callback: str) -> str:
    subscription_id = str(uuid.uuid4())
    await store.add_subscription(
        SubscriptionRecord(subscription_id=subscription_id, callback=callback)
    )
    return subscription_id


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@dataclass
class Harness:
    store: InMemoryStore
    service: DeliveryService
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float:
        return sample(self.registry, f"netweave_{name}", **labels)


@contextlib.asynccontextmanager
async def delivering(
    *,
    policy: RetryPolicy = FAST,
    store: InMemoryStore | None = None,
    shutdown_grace: float = 1.0,
    **options: Any,
) -> AsyncIterator[Harness]:
    """A running :class:`DeliveryService` over an in-memory store; closed at the end."""
    store = store or InMemoryStore()
    registry = CollectorRegistry()
    async with httpx.AsyncClient(trust_env=False) as http:
        service = DeliveryService(
            store,
            http=http,
            policy=policy,
            worker_id="worker-1",
            metrics=DeliveryMetrics(registry),
            take_wait=0.2,
            shutdown_grace=shutdown_grace,
            **options,
        )
        runner = asyncio.create_task(service.run())
        try:
            yield Harness(store, service, registry)
        finally:
            await service.aclose()
            await runner


async def settled(store: InMemoryStore) -> bool:
    return await store.depth() == 0


# Delivery ---------------------------------------------------------------------------------


async def test_delivery_posts_exact_body_and_headers_then_completes(receiver: Receiver) -> None:
    signed_path, plain_path = unique_path("signed"), unique_path("plain")
    signed_url, plain_url = receiver.script(signed_path), receiver.script(plain_path)
    secret = b"sub-secret"
    store = InMemoryStore()
    signed_sub = await subscribe(store, signed_url)
    plain_sub = await subscribe(store, plain_url)
    signed = notification(signed_sub, signed_url, text="näive ✓", n=[1, 2])
    plain = notification(plain_sub, plain_url)

    def secret_for(subscription_id: str) -> bytes | None:
        return secret if subscription_id == signed_sub else None

    async with delivering(store=store, secret_for=secret_for) as h:
        await store.enqueue([signed, plain])
        await eventually(lambda: settled(store), what="both deliveries completed")

        [got] = receiver.received(signed_path)
        assert got.body == signed.body
        assert got.headers["content-type"] == "application/json"
        assert got.headers["user-agent"] == f"netweave/{__version__}"
        assert got.notification_id == signed.notification_id
        assert verify(
            secret,
            timestamp=got.headers["x-netweave-timestamp"],
            signature=got.headers["x-netweave-signature"],
            body=got.body,
            now=time.time(),
        )
        [unsigned] = receiver.received(plain_path)
        assert unsigned.body == plain.body
        assert unsigned.notification_id == plain.notification_id
        assert "x-netweave-signature" not in unsigned.headers
        assert "x-netweave-timestamp" not in unsigned.headers

        assert await store.dead_letters() == []
        assert h.metric("deliveries_attempted_total") == 2
        assert h.metric("deliveries_succeeded_total") == 2
        assert h.metric("delivery_latency_seconds_count") == 2
        assert 0 < h.metric("delivery_latency_seconds_sum") < 5


async def test_delivery_retries_503_then_delivers_exactly_once(receiver: Receiver) -> None:
    path = unique_path("flaky")
    url = receiver.script(path, Reply(503), Reply(503), Reply(503))
    async with delivering() as h:
        delivery = notification(await subscribe(h.store, url), url)
        await h.store.enqueue([delivery])
        await eventually(lambda: settled(h.store), what="the delivery completed")

        attempts = receiver.received(path)
        assert [a.status for a in attempts] == [503, 503, 503, 204]
        assert {a.notification_id for a in attempts} == {delivery.notification_id}
        assert {a.body for a in attempts} == {delivery.body}
        assert await h.store.dead_letters() == []
        assert h.metric("deliveries_attempted_total") == 4
        assert h.metric("deliveries_failed_total", reason="http_5xx") == 3
        assert h.metric("deliveries_retried_total") == 3
        assert h.metric("deliveries_succeeded_total") == 1


async def test_delivery_4xx_is_dead_lettered_at_once(receiver: Receiver) -> None:
    path = unique_path("reject")
    url = receiver.script(path, then=Reply(400))
    async with delivering() as h:
        delivery = notification(await subscribe(h.store, url), url)
        await h.store.enqueue([delivery])
        await eventually(lambda: _dead_count(h.store, 1), what="a dead letter")

        [dead] = await h.store.dead_letters()
        assert dead.delivery.notification_id == delivery.notification_id
        assert dead.reason == "HTTP 400 after 1 attempt: permanent failure"
        assert dead.delivery.attempts == 1
        assert len(receiver.received(path)) == 1
        assert await h.store.depth() == 0
        assert h.metric("deliveries_dead_lettered_total", reason="http_4xx", cause="permanent") == 1
        assert h.metric("deliveries_retried_total") == 0


async def test_delivery_retries_503_then_gives_up(receiver: Receiver) -> None:
    path = unique_path("down")
    url = receiver.script(path, then=Reply(503))
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.05, jitter=0.0, timeout=5.0)
    async with delivering(policy=policy) as h:
        delivery = notification(await subscribe(h.store, url), url)
        await h.store.enqueue([delivery])
        await eventually(lambda: _dead_count(h.store, 1), what="a dead letter")

        [dead] = await h.store.dead_letters()
        assert dead.reason == "HTTP 503 after 3 attempts: attempts exhausted (3 of 3)"
        assert dead.delivery.attempts == 3
        assert dead.delivery.last_error == "HTTP 503"
        assert len(receiver.received(path)) == 3
        assert h.metric("deliveries_retried_total") == 2
        assert h.metric("deliveries_dead_lettered_total", reason="http_5xx", cause="exhausted") == 1


async def test_delivery_honours_retry_after(receiver: Receiver) -> None:
    path = unique_path("busy")
    url = receiver.script(path, Reply(429, headers=(("Retry-After", "1"),)))
    async with delivering() as h:  # the policy alone would retry after 0.05 s
        await h.store.enqueue([notification(await subscribe(h.store, url), url)])
        await eventually(lambda: settled(h.store), what="the delivery completed")

        first, second = receiver.received(path)
        assert (first.status, second.status) == (429, 204)
        assert second.at - first.at >= 1.0
        assert h.metric("deliveries_failed_total", reason="http_429") == 1


async def test_delivery_keeps_per_subscription_order_through_retries(receiver: Receiver) -> None:
    path = unique_path("ordered")
    failing = {2, 5, 6, 11, 17}  # request numbers (0-based) answered 503
    replies = [Reply(503 if n in failing else 204) for n in range(25)]
    url = receiver.script(path, *replies)
    async with delivering() as h:
        subscription_id = await subscribe(h.store, url)
        deliveries = [notification(subscription_id, url, seq=i) for i in range(20)]
        await h.store.enqueue(deliveries)
        await eventually(lambda: settled(h.store), within=10, what="20 deliveries completed")

        expected = [d.notification_id for d in deliveries]
        attempts = receiver.received(path)
        delivered = [a.notification_id for a in attempts if a.status == 204]
        assert delivered == expected
        position = [expected.index(a.notification_id) for a in attempts]
        assert position == sorted(position), "a later notification overtook a retried one"
        assert len(attempts) == 20 + len(failing)


async def depth_is(store: InMemoryStore, wanted: int) -> bool:
    return await store.depth() == wanted


async def test_slow_subscriber_does_not_delay_others(receiver: Receiver) -> None:
    slow_path, fast_path = unique_path("slow"), unique_path("fast")
    slow_url = receiver.script(slow_path, then=Reply(204, delay=2.0))
    fast_url = receiver.script(fast_path)
    async with delivering() as h:
        slow_sub = await subscribe(h.store, slow_url)
        fast_sub = await subscribe(h.store, fast_url)
        await h.store.enqueue([notification(slow_sub, slow_url)])
        await eventually(lambda: len(receiver.received(slow_path)) == 1, what="the slow POST")

        started = time.time()
        fast = [notification(fast_sub, fast_url, seq=i) for i in range(5)]
        await h.store.enqueue(fast)
        await eventually(lambda: len(receiver.received(fast_path)) == 5, what="5 fast POSTs")
        arrived = [r.at - started for r in receiver.received(fast_path)]
        assert max(arrived) < 0.3, arrived
        # the fast ones complete just after the receiver answers them; the slow one is
        # still being answered (it takes 2 s)
        await eventually(lambda: depth_is(h.store, 1), within=1.0, what="the fast completions")
        assert receiver.received(slow_path)[0].status == 204  # the slow one's only attempt

        await eventually(lambda: settled(h.store), what="the slow delivery")
        assert [r.status for r in receiver.received(slow_path)] == [204]


@pytest.mark.parametrize("during", ["backoff", "attempt"])
async def test_removed_subscription_gets_no_further_attempts(
    receiver: Receiver, during: str
) -> None:
    path = unique_path(f"removed-{during}")
    delay = 0.3 if during == "attempt" else 0.0
    url = receiver.script(path, then=Reply(503, delay=delay))
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.3, jitter=0.0, timeout=5.0)
    async with delivering(policy=policy) as h:
        subscription_id = await subscribe(h.store, url)
        await h.store.enqueue([notification(subscription_id, url, seq=i) for i in range(3)])
        await eventually(lambda: len(receiver.received(path)) == 1, what="the first attempt")
        if during == "backoff":
            await eventually(lambda: h.service.in_flight == 0, what="the retry scheduled")
        else:
            assert h.service.in_flight == 1

        assert await h.store.remove_subscription(subscription_id)
        await eventually(lambda: h.service.in_flight == 0, what="the attempt settled")
        assert await h.store.depth() == 0
        await asyncio.sleep(0.8)  # a retry would have come after 0.3 s
        assert len(receiver.received(path)) == 1
        assert await h.store.depth() == 0
        assert await h.store.dead_letters() == []


async def test_connection_refused_is_retried_then_dead_lettered() -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.05, jitter=0.0, timeout=5.0)
    async with delivering(policy=policy) as h:
        await h.store.enqueue([notification(await subscribe(h.store, url), url)])
        await eventually(lambda: _dead_count(h.store, 1), what="a dead letter")

        [dead] = await h.store.dead_letters()
        assert dead.reason.startswith("ConnectError")
        assert dead.reason.endswith("after 3 attempts: attempts exhausted (3 of 3)")
        assert h.metric("deliveries_failed_total", reason="connect") == 3
        assert h.metric("deliveries_retried_total") == 2
        assert h.metric("deliveries_dead_lettered_total", reason="connect", cause="exhausted") == 1


async def test_redirect_is_not_followed_and_is_permanent(receiver: Receiver) -> None:
    path, elsewhere = unique_path("moved"), unique_path("elsewhere")
    target = receiver.script(elsewhere)
    url = receiver.script(path, then=Reply(302, headers=(("Location", target),)))
    async with delivering() as h:
        await h.store.enqueue([notification(await subscribe(h.store, url), url)])
        await eventually(lambda: _dead_count(h.store, 1), what="a dead letter")

        [dead] = await h.store.dead_letters()
        assert dead.reason == "HTTP 302 after 1 attempt: permanent failure"
        assert len(receiver.received(path)) == 1
        assert receiver.received(elsewhere) == []
        assert h.metric("deliveries_dead_lettered_total", reason="http_3xx", cause="permanent") == 1


async def test_attempt_longer_than_policy_timeout_is_retried(receiver: Receiver) -> None:
    path = unique_path("stalls")
    url = receiver.script(path, Reply(204, delay=1.0))
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.05, jitter=0.0, timeout=0.3)
    async with delivering(policy=policy) as h:
        await h.store.enqueue([notification(await subscribe(h.store, url), url)])
        await eventually(lambda: settled(h.store), what="the delivery completed")

        assert len(receiver.received(path)) == 2
        assert h.metric("deliveries_failed_total", reason="timeout") == 1
        assert h.metric("deliveries_succeeded_total") == 1


async def test_unfinished_attempt_is_offered_again_after_close(receiver: Receiver) -> None:
    path = unique_path("cut")
    url = receiver.script(path, Reply(204, delay=1.0))
    store = InMemoryStore(visibility_timeout=0.5)
    delivery = notification(await subscribe(store, url), url)
    async with delivering(store=store, shutdown_grace=0.1) as h:
        await store.enqueue([delivery])
        await eventually(lambda: len(receiver.received(path)) == 1, what="the first attempt")
    assert h.service.in_flight == 0  # cancelled after the grace period
    assert await store.depth() == 1

    async with delivering(store=store):
        await eventually(lambda: settled(store), what="the delivery completed")
    attempts = receiver.received(path)
    assert [a.notification_id for a in attempts] == [delivery.notification_id] * 2


async def test_close_without_run_and_twice() -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        service = DeliveryService(InMemoryStore(), http=http, policy=FAST, worker_id="w")
        await service.aclose()
        await service.aclose()
        await service.run()  # returns at once: the service is closed


async def _dead_count(store: InMemoryStore, count: int) -> bool:
    return len(await store.dead_letters()) == count


# The retry policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (301, "permanent"),
        (302, "permanent"),
        (307, "permanent"),
        (400, "permanent"),
        (401, "permanent"),
        (404, "permanent"),
        (410, "permanent"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (599, "retry"),
    ],
)
def test_policy_classifies_statuses(status: int, outcome: str) -> None:
    assert RetryPolicy().classify(status=status, error=None) == outcome


@pytest.mark.parametrize(
    ("error", "outcome", "reason"),
    [
        (httpx.ConnectError("refused"), "retry", "connect"),
        (httpx.ConnectTimeout("slow"), "retry", "timeout"),
        (httpx.ReadTimeout("slow"), "retry", "timeout"),
        (httpx.PoolTimeout("busy"), "retry", "timeout"),
        (TimeoutError(), "retry", "timeout"),
        (httpx.ReadError("reset"), "retry", "network"),
        (httpx.RemoteProtocolError("closed"), "retry", "network"),
        (httpx.UnsupportedProtocol("ftp"), "permanent", "error"),
        (httpx.InvalidURL("bad"), "permanent", "error"),
    ],
)
def test_policy_classifies_errors(error: BaseException, outcome: str, reason: str) -> None:
    assert RetryPolicy().classify(status=None, error=error) == outcome
    assert failure_reason(status=None, error=error) == reason


def test_policy_backs_off_exponentially_within_jitter_and_cap() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=10.0, jitter=0.2, max_attempts=20)
    for attempts, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (12, 10.0)]:
        for _ in range(50):
            at = policy.next_attempt(attempts=attempts, retry_after=None, now=1000.0)
            assert at is not None
            assert base * 0.8 <= at - 1000.0 <= min(base * 1.2, 10.0)


def test_policy_honours_retry_after_seconds_and_date_capped() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=60.0, jitter=0.2)
    now = 1_764_160_000.0
    assert policy.next_attempt(attempts=1, retry_after="7", now=now) == now + 7
    assert policy.next_attempt(attempts=1, retry_after="3600", now=now) == now + 60
    date = formatdate(now + 30, usegmt=True)
    assert policy.next_attempt(attempts=1, retry_after=date, now=now) == now + 30
    past = formatdate(now - 30, usegmt=True)
    assert policy.next_attempt(attempts=1, retry_after=past, now=now) == now
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("-5", now=now) is None
    at = policy.next_attempt(attempts=1, retry_after="garbage", now=now)
    assert at is not None and now + 0.8 <= at <= now + 1.2


def test_policy_gives_up_after_attempts_or_age() -> None:
    policy = RetryPolicy(max_attempts=3, max_age=100.0, initial_backoff=10.0, jitter=0.0)
    assert policy.next_attempt(attempts=2, retry_after=None, now=0.0) == 20.0
    assert policy.next_attempt(attempts=3, retry_after=None, now=0.0) is None
    assert policy.exhausted_reason(attempts=3) == "attempts exhausted (3 of 3)"
    late = policy.next_attempt(attempts=2, retry_after=None, now=95.0, first_attempt_at=0.0)
    assert late is None
    assert policy.exhausted_reason(attempts=2) == "max age of 100 s exceeded"


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="status or an error"):
        RetryPolicy().classify(status=None, error=None)
