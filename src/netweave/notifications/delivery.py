"""Delivery workers: POST the outbox's notifications to the subscribers' callbacks.

A :class:`DeliveryService` takes due deliveries from the :class:`~netweave.store.base.Outbox`
and makes one attempt of each in its own task, so a slow subscriber only ever holds its
own delivery; the outbox hands out at most one delivery per subscription at a time, so
each subscriber still sees its notifications in order.  After an attempt the delivery is

* **completed** when the subscriber answered 2xx;
* **rescheduled** (``retry_later``) after a retryable failure -- 408, 429, 5xx, a
  timeout, a refused or dropped connection -- at the time the
  :class:`~netweave.notifications.retry.RetryPolicy` gives (backoff with jitter, or the
  subscriber's ``Retry-After``);
* **dead-lettered** after a permanent failure (other 4xx, any 3xx: redirects are never
  followed) or when the policy's attempts or age are used up; the reason names the
  status or error and the number of attempts.

One attempt is ``POST <callback>`` of the stored body, byte for byte, with
``Content-Type: application/json``, ``User-Agent: netweave/<version>``,
``X-Netweave-Notification-Id`` (stable across retries: receivers drop duplicates with it)
and, when the subscription has a secret, the signature headers of
:mod:`netweave.notifications.signing`.  The whole attempt, connection to last byte, is
bounded by the policy's ``timeout``; at most 64 KiB of the answer are read.

A worker that dies mid-attempt loses nothing: the outbox offers the delivery again after
its visibility timeout, which is also what :meth:`DeliveryService.aclose` relies on for
attempts still running at the end of its grace period.

Failures are logged one line each (subscription, delivery and notification ids, attempt,
status or error), never with the body, the callback's answer or a secret.

Tracing (when on): each attempt is a client span, a child of the span that matched the
notification (the delivery's ``traceparent``), and the POST carries the attempt span's
own ``traceparent`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from netweave import __version__
from netweave.notifications.clients import OriginClients
from netweave.notifications.retry import RetryPolicy
from netweave.notifications.signing import signature_headers
from netweave.observability import tracing
from netweave.observability.logging import get_logger
from netweave.store.base import Delivery, Outbox

__all__ = ["FAILURE_REASONS", "DeliveryMetrics", "DeliveryService", "failure_reason"]

_log = get_logger("netweave.notifications.delivery")

NOTIFICATION_ID_HEADER = "X-Netweave-Notification-Id"
USER_AGENT = f"netweave/{__version__}"

#: the values of the ``reason`` label of the failure and dead-letter counters
FAILURE_REASONS = (
    "http_5xx",
    "http_429",
    "http_4xx",
    "http_3xx",
    "http_other",
    "timeout",
    "connect",
    "network",
    "error",
)

#: bytes of a callback's answer read at most (the rest is dropped with the connection)
_MAX_ANSWER_BYTES = 64 * 1024
#: from event observed to 2xx received; retries make the tail long
_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
_MAX_ERROR_TEXT = 200


class DeliveryMetrics:
    """The delivery collectors, registered in ``registry`` (the gateway's
    :class:`~netweave.observability.metrics.Metrics` registry in production)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempted = Counter(
            "netweave_deliveries_attempted",
            "Notification POSTs attempted (every retry counts).",
            registry=registry,
        )
        self.succeeded = Counter(
            "netweave_deliveries_succeeded",
            "Notifications a subscriber accepted with a 2xx answer.",
            registry=registry,
        )
        self.failed = Counter(
            "netweave_deliveries_failed",
            "Notification POSTs that failed, by reason (http_5xx, http_429, http_4xx, "
            "http_3xx, http_other, timeout, connect, network, error).",
            ["reason"],
            registry=registry,
        )
        self.retried = Counter(
            "netweave_deliveries_retried",
            "Failed notification POSTs rescheduled for another attempt.",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "netweave_deliveries_dead_lettered",
            "Notifications given up on, by the reason of the last failure and by cause "
            "(permanent, exhausted).",
            ["reason", "cause"],
            registry=registry,
        )
        self.latency = Histogram(
            "netweave_delivery_latency_seconds",
            "Time from the inventory change being observed to the subscriber's 2xx answer.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "netweave_deliveries_in_flight",
            "Notification POSTs in progress in this process.",
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "netweave_outbox_depth",
            "Deliveries pending or in flight in the outbox (all replicas).",
            registry=registry,
        )


class DeliveryService:
    """Delivers the outbox's notifications, ``concurrency`` attempts at a time."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        http: httpx.AsyncClient | OriginClients,
        policy: RetryPolicy,
        worker_id: str,
        concurrency: int = 64,
        secret_for: Callable[[str], bytes | None] | None = None,
        metrics: DeliveryMetrics | None = None,
        clock: Callable[[], float] = time.time,
        take_wait: float = 1.0,
        shutdown_grace: float = 5.0,
        depth_interval: float = 5.0,
    ) -> None:
        """``http`` is the caller's client (pooled, keep-alive, ``trust_env=False``), or
        one client per callback origin (:class:`OriginClients`); it is not closed here.
        ``secret_for(subscription_id)`` gives the HMAC key that signs that subscription's
        notifications, or None.  ``take_wait`` is how long one ``take`` waits for work,
        ``shutdown_grace`` how long :meth:`aclose` lets running attempts finish,
        ``depth_interval`` how often the outbox depth gauge is read."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._outbox = outbox
        self._client_for: Callable[[str], httpx.AsyncClient] = (
            http.client_for if isinstance(http, OriginClients) else lambda _url: http
        )
        self.policy = policy
        self.worker_id = worker_id
        self.concurrency = concurrency
        self._secret_for = secret_for
        self._metrics = metrics
        self._clock = clock
        self._take_wait = take_wait
        self._grace = shutdown_grace
        self._depth_interval = depth_interval
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._stopped = asyncio.Event()
        self._closing = False
        self._running = False

    @property
    def in_flight(self) -> int:
        """Attempts in progress (taken from the outbox, not yet settled)."""
        return len(self._tasks)

    # The loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Take and deliver until :meth:`aclose`; outbox errors are logged and retried.

        Cancelling the task running this stops taking and cancels the attempts in
        progress at once (their deliveries are offered again by the outbox).
        """
        if self._running:
            raise RuntimeError("DeliveryService.run is already running")
        self._running = True
        failures = 0
        next_depth = 0.0
        try:
            # Under load, take in batches (an eighth of the slots at least) rather than one
            # take per finished attempt; an idle service takes as soon as work is due.
            batch_size = max(1, self.concurrency // 8)
            while not self._closing:
                free = self.concurrency - len(self._tasks)
                if free <= 0 or (self._tasks and free < batch_size):
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                    continue
                try:
                    batch = await self._outbox.take(
                        self.worker_id, limit=free, wait=self._take_wait
                    )
                except Exception as exc:
                    failures += 1
                    delay = min(0.5 * 2 ** min(failures - 1, 6), 30.0)
                    _log.warning(
                        "outbox take failed; retrying",
                        worker=self.worker_id,
                        error=_error_text(exc),
                        retry_in=delay,
                    )
                    await self._pause(delay)
                    continue
                failures = 0
                for delivery in batch:  # even when closing: taken ones get the grace period
                    self._start(delivery)
                if self._metrics is not None and time.monotonic() >= next_depth:
                    next_depth = time.monotonic() + self._depth_interval
                    await self._update_depth()
        except asyncio.CancelledError:
            await self._cancel_all()
            raise
        finally:
            self._running = False
            self._stopped.set()

    async def aclose(self) -> None:
        """Stop taking; let running attempts finish within the grace period, then cancel
        the rest (the outbox offers those deliveries again after its visibility timeout).

        A ``take`` in progress is not interrupted (cancelling it could strand what it
        took until the visibility timeout): closing takes up to ``take_wait`` plus
        ``shutdown_grace`` seconds.  Safe to call more than once, with or without
        :meth:`run` having been started."""
        self._closing = True
        self._slot_freed.set()
        if not self._running:
            self._stopped.set()
        await self._stopped.wait()  # the take in progress returns within take_wait
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=self._grace)
            if pending:
                _log.info(
                    "cancelling unfinished deliveries",
                    worker=self.worker_id,
                    count=len(pending),
                )
        await self._cancel_all()

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or until :meth:`aclose` is called."""
        self._slot_freed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                while not self._closing:
                    await self._slot_freed.wait()
                    self._slot_freed.clear()

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _update_depth(self) -> None:
        assert self._metrics is not None
        try:
            self._metrics.outbox_depth.set(await self._outbox.depth())
        except Exception as exc:
            _log.warning("outbox depth unavailable", error=_error_text(exc))

    def _start(self, delivery: Delivery) -> None:
        task = asyncio.create_task(
            self._settle(delivery), name=f"delivery-{delivery.subscription_id}"
        )
        self._tasks.add(task)
        if self._metrics is not None:
            self._metrics.in_flight.inc()
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._metrics is not None:
            self._metrics.in_flight.dec()
        self._slot_freed.set()

    # One attempt ------------------------------------------------------------------------

    async def _settle(self, delivery: Delivery) -> None:
        """Make one attempt and record its outcome in the outbox; never raises."""
        try:
            if tracing.ENABLED:
                with tracing.delivery_attempt(
                    delivery.traceparent,
                    callback=delivery.callback,
                    attributes=_span_attributes(delivery),
                ):
                    await self._attempt(delivery)
            else:
                await self._attempt(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the outbox or secret_for failed
            _log.error(
                "delivery attempt broke off; the outbox will offer it again",
                subscription_id=delivery.subscription_id,
                delivery_id=delivery.delivery_id,
                error=_error_text(exc),
            )

    async def _attempt(self, delivery: Delivery) -> None:
        started = self._clock()
        attempt = delivery.attempts + 1
        first = delivery.first_attempt_at if delivery.first_attempt_at is not None else started
        tried = replace(delivery, attempts=attempt, first_attempt_at=first)
        headers = self._headers(delivery, now=started)
        metrics = self._metrics
        if metrics is not None:
            metrics.attempted.inc()
        status: int | None = None
        retry_after: str | None = None
        error: Exception | None = None
        try:
            status, retry_after = await self._post(delivery, headers=headers)
        except Exception as exc:
            error = exc
        outcome = self.policy.classify(status=status, error=error)
        if tracing.ENABLED:
            self._trace_outcome(delivery, status, error, outcome)
        now = self._clock()
        if outcome == "delivered":
            await self._outbox.complete(tried)
            if metrics is not None:
                metrics.succeeded.inc()
                metrics.latency.observe(max(now - delivery.event_time, 0.0))
            return
        reason = failure_reason(status=status, error=error)
        what = _describe(status, error, callback=delivery.callback, timeout=self.policy.timeout)
        tried = replace(tried, last_error=what)
        if metrics is not None:
            metrics.failed.labels(reason=reason).inc()
        context = {
            "subscription_id": delivery.subscription_id,
            "delivery_id": delivery.delivery_id,
            "notification_id": delivery.notification_id,
            "attempt": attempt,
            "status": status,
            "error": None if error is None else what,
            "reason": reason,
        }
        if outcome == "retry":
            at = self.policy.next_attempt(
                attempts=attempt, retry_after=retry_after, now=now, first_attempt_at=first
            )
            if at is not None:
                _log.warning("delivery failed; will retry", retry_in=round(at - now, 3), **context)
                await self._outbox.retry_later(tried, at=at, error=what)
                if metrics is not None:
                    metrics.retried.inc()
                return
            cause = "exhausted"
            why = self.policy.exhausted_reason(attempts=attempt)
        else:
            cause = "permanent"
            why = "permanent failure"
        plural = "" if attempt == 1 else "s"
        dead_reason = f"{what} after {attempt} attempt{plural}: {why}"
        _log.error("delivery failed; dead-lettered", cause=cause, **context)
        await self._outbox.dead_letter(tried, reason=dead_reason)
        if metrics is not None:
            metrics.dead_lettered.labels(reason=reason, cause=cause).inc()

    def _trace_outcome(
        self, delivery: Delivery, status: int | None, error: Exception | None, outcome: str
    ) -> None:
        """Record an attempt's answer and outcome on its span (errors without the URL)."""
        current = tracing.current_span()
        if current is None:
            return
        current.set_attribute("netweave.delivery.outcome", outcome)
        if status is not None:
            tracing.http_status(current, status)
        elif error is not None:
            what = _describe(None, error, callback=delivery.callback, timeout=self.policy.timeout)
            tracing.failed(current, type(error).__qualname__, what)

    def _headers(self, delivery: Delivery, *, now: float) -> dict[str, str]:
        """The headers of one attempt made at ``now``, signed when there is a secret."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            NOTIFICATION_ID_HEADER: delivery.notification_id,
        }
        if self._secret_for is not None:
            secret = self._secret_for(delivery.subscription_id)
            headers.update(signature_headers(secret, delivery.body, now=now))
        tracing.inject(headers)  # the attempt span's traceparent, when tracing is on
        return headers

    async def _post(self, delivery: Delivery, *, headers: dict[str, str]) -> tuple[int, str | None]:
        """POST the notification; returns the status and the ``Retry-After`` header."""
        client = self._client_for(delivery.callback)
        request = client.build_request(
            "POST",
            delivery.callback,
            content=delivery.body,
            headers=headers,
            timeout=self.policy.timeout,
        )
        async with asyncio.timeout(self.policy.timeout):
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                received = 0
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received > _MAX_ANSWER_BYTES:
                        break  # closing an unread answer drops the connection
            finally:
                await response.aclose()
        return response.status_code, response.headers.get("Retry-After")


def _span_attributes(delivery: Delivery) -> dict[str, str | int]:
    return {
        "netweave.subscription_id": delivery.subscription_id,
        "netweave.notification_id": delivery.notification_id,
        "netweave.delivery_id": delivery.delivery_id,
        "netweave.delivery.attempt": delivery.attempts + 1,
    }


def failure_reason(*, status: int | None, error: BaseException | None) -> str:
    """The metrics label of a failed attempt: one of :data:`FAILURE_REASONS`."""
    if status is not None:
        if status == 429:
            return "http_429"
        if 500 <= status < 600:
            return "http_5xx"
        if 400 <= status < 500:
            return "http_4xx"
        if 300 <= status < 400:
            return "http_3xx"
        return "http_other"
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(error, httpx.ConnectError | ConnectionRefusedError):
        return "connect"
    if isinstance(error, httpx.NetworkError | httpx.RemoteProtocolError | ConnectionError):
        return "network"
    return "error"


def _describe(
    status: int | None, error: BaseException | None, *, callback: str, timeout: float
) -> str:
    """A short text of a failure for logs and dead letters (no body, no URL)."""
    if status is not None:
        return f"HTTP {status}"
    if isinstance(error, TimeoutError) and not str(error):
        return f"TimeoutError: no complete answer within {timeout:g} s"
    text = "error" if error is None else _error_text(error)
    return text.replace(callback, "<callback>")


def _error_text(error: BaseException) -> str:
    message = str(error).strip()
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text[:_MAX_ERROR_TEXT]
