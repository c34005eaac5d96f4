"""Per-tenant request rate limits: token buckets, in memory or shared by replicas in Redis.

The authentication middleware calls :meth:`RateLimiter.acquire` once per authenticated
request with the tenant as key; ``0.0`` lets the request through, anything else is the
``Retry-After`` of a 429.  A bucket holds at most ``burst`` tokens, starts full and gains
``rate`` tokens a second; a request takes one.

:class:`MemoryRateLimiter`
    Exact token buckets for one process (tests, a single replica).

:class:`RedisRateLimiter`
    One bucket per key in Redis, shared by every replica: the hash
    ``{prefix}:ratelimit:{key}`` holds the tokens and the time they were counted, and one
    Lua script refills, draws and reports the wait, using Redis' own ``TIME`` so the
    replicas' clocks do not matter.  ``PEXPIRE`` drops a bucket once it would be full again
    (an absent bucket *is* a full one), so idle tenants cost nothing.

    A Redis round trip per request is too dear at ~10k requests/s per replica, so a replica
    draws tokens in batches and spends them locally.  A draw takes up to
    ``max(1, floor(burst * batch))`` tokens; the size adapts to the replica's demand
    (doubling while drawn tokens run out, halving when they lapse unspent), so a tenant
    spreading a little traffic over many replicas does not waste its bucket on tokens
    nobody spends.  Concurrent acquires of one key on one replica share one in-flight draw,
    and once the bucket answered "empty, next token in *t*" the replica refuses that key
    locally for *t* without asking again.  Drawn tokens lapse ``lease_ttl`` seconds after
    the draw and are dropped, never returned.

    **The bound.**  Every admitted request spends a token the script took out of the shared
    bucket, and the bucket never hands out more than a token bucket may, so across all
    replicas the admitted requests never exceed ``burst + rate * elapsed`` counted from a
    moment the bucket was full (its creation, say).  Batching only makes a replica
    conservative -- tokens it holds are gone from the bucket for everyone else, and lapsed
    ones are lost -- never generous.  The one thing a batch changes: tokens drawn before a
    window started may be spent inside it, so a window of length *T* can see up to
    ``burst + rate * (T + lease_ttl)`` (and at most one draw per replica more than
    ``burst + rate * T``); a short ``lease_ttl`` keeps that small.

    **Failures.**  When Redis cannot be reached (or answers too slowly: ``timeout``) the
    limiter *fails open*: the request is admitted, a warning is logged at most once per
    10 s, and Redis is not tried again for ``outage_backoff`` seconds so that a dead Redis
    does not add a connection timeout to every request.  A rate limit protects the gateway
    and its backends from a noisy tenant; refusing every tenant's O2 API calls because the
    limiter's store is down would turn a loss of strictness into a loss of service, so
    availability wins.  Redis does not hold the data of the O2 API itself.

The limiters hold their state per key in a bounded LRU map: a key evicted from a full map
starts again from a full bucket (memory) or from nothing held locally (Redis).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from netweave.observability.logging import get_logger

__all__ = ["MemoryRateLimiter", "RateLimiter", "RedisRateLimiter"]

_log = get_logger("netweave.security.ratelimit")

_S = TypeVar("_S")

#: keys whose state a limiter keeps at most
DEFAULT_MAX_KEYS = 100_000
#: seconds between two "Redis unreachable" warnings
_WARN_INTERVAL = 10.0

#: KEYS: the bucket; ARGV: rate (tokens/s), burst, tokens wanted.
#: Returns {granted, wait in µs}: wait is 0 when tokens were granted, else the time until
#: the next token.  Tokens are a float, the time integer µs of Redis' clock.
_DRAW = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
elseif now > ts then
  tokens = tokens + (now - ts) * rate / 1000000
end
if tokens > burst then tokens = burst end
local granted = 0
local wait = 0
if tokens >= 1 then
  granted = math.min(want, math.floor(tokens))
  tokens = tokens - granted
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1)
return {granted, wait}
"""


class RateLimiter(Protocol):
    """What the middleware needs of a limiter."""

    async def acquire(self, key: str, *, rate: float, burst: int) -> float:
        """0.0 when a request may proceed (one token taken), else seconds until one will be
        available."""
        ...

    async def aclose(self) -> None:
        """Release what the limiter holds (tasks; never a client it was given)."""
        ...


def _check(rate: float, burst: int) -> None:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError("the rate must be a positive number of tokens per second")
    if burst < 1:
        raise ValueError("the burst must be at least one token")


def _evict(states: OrderedDict[str, _S], max_keys: int) -> None:
    while len(states) > max_keys:
        states.popitem(last=False)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class MemoryRateLimiter:
    """Exact token buckets in this process; ``clock`` is monotonic seconds (injectable)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """The number of keys whose bucket is held."""
        return len(self._buckets)

    async def acquire(self, key: str, *, rate: float, burst: int) -> float:
        _check(rate, burst)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(burst), stamp=now)
            _evict(self._buckets, self._max_keys)
        else:
            self._buckets.move_to_end(key)
            if now > bucket.stamp:
                bucket.tokens += (now - bucket.stamp) * rate
                bucket.stamp = now
            bucket.tokens = min(bucket.tokens, float(burst))
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate

    async def aclose(self) -> None:
        self._buckets.clear()


@dataclass(slots=True)
class _Local:
    """What one replica knows of one key's shared bucket."""

    tokens: int = 0
    """Tokens drawn and not yet spent."""
    expires: float = 0.0
    """When (local clock) the drawn tokens lapse."""
    retry_at: float = 0.0
    """Until when (local clock) the shared bucket is known to be empty."""
    size: int = 1
    """Tokens the next draw asks for."""
    draw: asyncio.Task[bool] | None = None
    """The draw in flight: True when Redis answered, False when it failed (fail open)."""


class RedisRateLimiter:
    """Token buckets in Redis shared by replicas, drawn from in batches (see the module).

    ``client`` is the caller's and is not closed by :meth:`aclose`.  ``clock`` is this
    replica's monotonic clock, used only for the lifetime of locally held tokens and
    refusals; the bucket itself runs on Redis' clock.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        batch: float = 0.1,
        lease_ttl: float = 1.0,
        timeout: float = 0.5,
        outage_backoff: float = 1.0,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= batch <= 1:
            raise ValueError("batch must be between 0 and 1 (a fraction of the burst)")
        if lease_ttl <= 0 or timeout <= 0:
            raise ValueError("lease_ttl and timeout must be positive")
        if outage_backoff < 0:
            raise ValueError("outage_backoff must not be negative")
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self._script = client.register_script(_DRAW)
        self._prefix = prefix
        self._batch = batch
        self._lease_ttl = lease_ttl
        self._timeout = timeout
        self._outage_backoff = outage_backoff
        self._max_keys = max_keys
        self._clock = clock
        self._keys: OrderedDict[str, _Local] = OrderedDict()
        self._draws: set[asyncio.Task[bool]] = set()
        self._open_until = -math.inf  # failing open without asking Redis until then
        self._warned_at: float | None = None
        self._failing = False
        #: round trips to Redis made, successful or not
        self.draws = 0
        #: requests admitted without a token because Redis failed
        self.admitted_open = 0

    def bucket_key(self, key: str) -> str:
        """The Redis key of ``key``'s bucket."""
        return f"{self._prefix}:ratelimit:{key}"

    async def acquire(self, key: str, *, rate: float, burst: int) -> float:
        _check(rate, burst)
        local = self._local(key)
        while True:
            now = self._clock()
            if local.tokens > 0 and now < local.expires:
                local.tokens -= 1
                return 0.0
            if now < local.retry_at:
                return local.retry_at - now
            if now < self._open_until:
                self.admitted_open += 1
                return 0.0
            draw = local.draw
            if draw is None:
                draw = local.draw = asyncio.create_task(self._draw(key, local, rate, burst))
                self._draws.add(draw)
                draw.add_done_callback(self._draws.discard)
            # shielded: a cancelled request must not cancel the draw the others wait on
            if not await asyncio.shield(draw):
                self.admitted_open += 1
                return 0.0
            # Redis answered: the tokens (or the refusal) are in ``local`` now; go again,
            # as concurrent acquires may have spent what was drawn.

    async def aclose(self) -> None:
        draws = list(self._draws)
        for draw in draws:
            draw.cancel()
        await asyncio.gather(*draws, return_exceptions=True)
        self._keys.clear()

    def _local(self, key: str) -> _Local:
        local = self._keys.get(key)
        if local is None:
            local = self._keys[key] = _Local()
            _evict(self._keys, self._max_keys)
        else:
            self._keys.move_to_end(key)
        return local

    async def _draw(self, key: str, local: _Local, rate: float, burst: int) -> bool:
        started = self._clock()
        ceiling = max(1, math.floor(burst * self._batch))
        if local.tokens > 0:  # the last draw lapsed unspent: it was too large
            local.size = max(1, local.size // 2)
            local.tokens = 0
        elif started < local.expires:  # the last draw ran out before it lapsed: too small
            local.size *= 2
        local.size = min(local.size, ceiling)
        self.draws += 1
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._script(
                    keys=[self.bucket_key(key)], args=[repr(rate), burst, local.size]
                )
        except (RedisError, TimeoutError) as exc:
            self._failed(exc)
            return False
        finally:
            local.draw = None
        granted, wait_us = int(reply[0]), int(reply[1])
        if self._failing:
            self._failing = False
            _log.info("rate limiting resumed: Redis answers again")
        if granted > 0:
            local.tokens = granted
            local.expires = started + self._lease_ttl
        else:
            local.retry_at = self._clock() + wait_us / 1_000_000
        return True

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._open_until = now + self._outage_backoff
        self._failing = True
        if self._warned_at is None or now - self._warned_at >= _WARN_INTERVAL:
            self._warned_at = now
            _log.warning(
                "rate limiting suspended: Redis did not answer, requests are admitted",
                error=type(exc).__name__,
            )
