"""When to retry a notification delivery, and when to give up on it.

A :class:`RetryPolicy` is a value object (like httpx's ``Timeout``): it does no I/O and
keeps no state, so one policy serves every delivery worker.  It answers two questions:

* :meth:`RetryPolicy.classify` -- what one attempt's outcome means::

      2xx                                        delivered
      408, 429, 5xx                              retry
      timeout, refused or dropped connection     retry
      1xx, 3xx (redirects are never followed,    permanent
        a callback must not bounce the gateway
        elsewhere), other 4xx, other errors

* :meth:`RetryPolicy.next_attempt` -- when to try again after a retryable failure:
  exponential backoff (``initial_backoff`` doubling per attempt, at most
  ``max_backoff``) with +/- ``jitter`` so that many deliveries failing together do not
  come back together; a ``Retry-After`` answer (seconds or HTTP-date) replaces the
  backoff, also at most ``max_backoff``.  ``None`` means the delivery has used its
  ``max_attempts`` or would be retried later than ``max_age`` after its first attempt:
  it goes to the dead letters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

__all__ = ["Outcome", "RetryPolicy", "parse_retry_after"]

#: what an attempt's result means for its delivery
Outcome = Literal["delivered", "retry", "permanent"]

#: transport errors that say nothing about the notification itself: try again later
_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.NetworkError,  # refused, reset, dropped connections
    httpx.RemoteProtocolError,  # the peer closed or garbled the response
    httpx.ProxyError,
    TimeoutError,  # the policy's overall deadline of one attempt
    ConnectionError,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How hard the gateway tries to deliver one notification."""

    max_attempts: int = 10
    """Attempts (the first included) before a retryable failure is dead-lettered."""
    max_age: float = 3600.0
    """Seconds after the first attempt past which no further attempt is scheduled."""
    initial_backoff: float = 1.0
    """Seconds before the second attempt; doubles with each further attempt."""
    max_backoff: float = 300.0
    """Upper bound of one wait, ``Retry-After`` included."""
    jitter: float = 0.2
    """Relative spread of each backoff: 0.2 waits between 80 % and 120 % of it."""
    timeout: float = 10.0
    """Seconds one attempt may take, from connecting to the end of the response."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_age <= 0 or self.timeout <= 0:
            raise ValueError("max_age and timeout must be positive")
        if not 0 <= self.initial_backoff <= self.max_backoff:
            raise ValueError("backoffs must satisfy 0 <= initial_backoff <= max_backoff")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def classify(self, *, status: int | None, error: BaseException | None) -> Outcome:
        """What an attempt that got ``status`` (or raised ``error``) means."""
        if status is not None:
            if 200 <= status < 300:
                return "delivered"
            if status in (408, 429) or 500 <= status < 600:
                return "retry"
            return "permanent"
        if error is None:
            raise ValueError("an attempt has either a status or an error")
        return "retry" if isinstance(error, _TRANSIENT_ERRORS) else "permanent"

    def next_attempt(
        self,
        *,
        attempts: int,
        retry_after: str | None,
        now: float,
        first_attempt_at: float | None = None,
    ) -> float | None:
        """When to make the next attempt (epoch seconds), or None to give up.

        ``attempts`` counts the attempts made so far, the one that just failed included;
        ``first_attempt_at`` (default ``now``) is when the first of them was made.
        """
        if attempts >= self.max_attempts:
            return None
        delay = parse_retry_after(retry_after, now=now)
        if delay is None:
            delay = self.initial_backoff * 2.0 ** max(attempts - 1, 0)
            delay = min(delay, self.max_backoff)  # before jitter: spread stays at the cap
            delay *= random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        at = now + min(delay, self.max_backoff)
        started = now if first_attempt_at is None else first_attempt_at
        if at - started > self.max_age:
            return None
        return at

    def exhausted_reason(self, *, attempts: int) -> str:
        """Why :meth:`next_attempt` gave up after ``attempts`` attempts (for dead letters)."""
        if attempts >= self.max_attempts:
            return f"attempts exhausted ({attempts} of {self.max_attempts})"
        return f"max age of {self.max_age:g} s exceeded"


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait that a ``Retry-After`` value asks for, or None if it is unusable.

    Both forms of RFC 9110 are understood: delay-seconds (``120``) and an HTTP-date
    (``Wed, 21 Oct 2015 07:28:00 GMT``, measured against ``now``).  A date in the past
    means "now" (0).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)
