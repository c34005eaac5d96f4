"""What only the Redis store does: several replicas on one Redis, Redis dying and returning,
the key prefix, the round trips, Sentinel."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from tests.redisserver import RedisServer, RedisServerError, redis_sentinel, redis_server

from netweave.errors import BackendUnavailableError
from netweave.store.base import Delivery, SubscriptionRecord
from netweave.store.keys import GROUP
from netweave.store.redis import RedisStore

ReplicaFactory = Callable[..., RedisStore]


def delivery(subscription_id: str, n: int = 0) -> Delivery:
    return Delivery(
        subscription_id=subscription_id,
        notification_id=f"{subscription_id}-{n}",
        callback=f"http://127.0.0.1:9/{subscription_id}",
        body=b'{"n": %d}' % n,
        event_time=1_700_000_000.0 + n,
    )


def subscription(subscription_id: str, **fields: Any) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=subscription_id,
        callback=fields.pop("callback", f"http://127.0.0.1:9/{subscription_id}"),
        **fields,
    )


@pytest.fixture
async def replica(redis_url: str, redis_prefix: str) -> AsyncIterator[ReplicaFactory]:
    """Makes RedisStores sharing one Redis and prefix, like gateway replicas."""
    created: list[RedisStore] = []

    def make(**options: Any) -> RedisStore:
        options.setdefault("poll_interval", 0.02)
        store = RedisStore.from_url(redis_url, prefix=redis_prefix, **options)
        created.append(store)
        return store

    yield make
    for store in created:
        await store.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    """A redis-server of this test's own, to kill and restart."""
    with redis_server(tmp_path / "redis") as server:
        yield server


async def test_replicas_racing_to_add_the_same_callback_and_filter_have_one_winner(
    replica: ReplicaFactory,
) -> None:
    replicas = [replica(), replica(), replica()]
    records = [subscription(f"s{i}", callback="http://h/cb", filter="(eq,a,1)") for i in range(9)]
    outcomes = await asyncio.gather(
        *(replicas[i % 3].add_subscription(record) for i, record in enumerate(records)),
        return_exceptions=True,
    )
    assert sum(outcome is None for outcome in outcomes) == 1
    assert len(await replicas[1].list_subscriptions()) == 1
    assert await replicas[2].subscriptions_generation() == 1


async def test_two_replicas_never_hold_one_subscription_at_once_and_deliver_each_once(
    replica: ReplicaFactory,
) -> None:
    replicas = [replica(), replica()]
    subscription_ids = [f"s{i:02}" for i in range(12)]
    for subscription_id in subscription_ids:
        await replicas[0].add_subscription(subscription(subscription_id))
    batches = [
        [delivery(s, b * 5 + n) for n in range(5) for s in subscription_ids] for b in range(6)
    ]
    total = sum(len(batch) for batch in batches)
    holding: dict[str, str] = {}
    delivered: dict[str, list[str]] = defaultdict(list)
    count = 0

    async def produce() -> None:
        for i, batch in enumerate(batches):
            await replicas[i % 2].enqueue(batch)
            await asyncio.sleep(0.01)

    async def work(store: RedisStore, worker: str) -> None:
        nonlocal count
        while count < total:
            taken = await store.take(worker, limit=3, wait=0.05)
            for item in taken:
                assert item.subscription_id not in holding, (worker, holding)
                holding[item.subscription_id] = worker
            await asyncio.sleep(0.001)
            for item in taken:
                delivered[item.subscription_id].append(item.notification_id)
                count += 1
                del holding[item.subscription_id]
                await store.complete(item)

    workers = [work(replicas[i % 2], f"replica{i % 2}/worker{i}") for i in range(6)]
    await asyncio.wait_for(asyncio.gather(produce(), *workers), 30)
    expected = {s: [f"{s}-{n}" for n in range(30)] for s in subscription_ids}
    assert dict(delivered) == expected
    assert await replicas[0].depth() == 0
    assert await replicas[1].take("late", limit=10, wait=0) == []


async def test_deliveries_of_a_dead_replica_are_claimed_by_another(
    replica: ReplicaFactory, redis_url: str, redis_prefix: str
) -> None:
    dying, surviving = replica(visibility_timeout=0.2), replica(visibility_timeout=0.2)
    for subscription_id in "abc":
        await surviving.add_subscription(subscription(subscription_id))
    await surviving.enqueue([delivery(s, n) for n in range(2) for s in "abc"])
    taken = await dying.take("dying/w1", limit=10, wait=0)
    assert len(taken) == 3
    await dying.aclose()  # the replica dies without completing anything

    assert await surviving.take("surviving/w1", limit=10, wait=0) == []
    started = time.monotonic()
    claimed = await surviving.take("surviving/w1", limit=10, wait=2)
    assert 0.1 <= time.monotonic() - started < 1.0
    assert sorted(d.delivery_id for d in claimed) == sorted(d.delivery_id for d in taken)
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        for subscription_id in "abc":
            [pending] = await client.xpending_range(
                f"{redis_prefix}:outbox:{subscription_id}", GROUP, "-", "+", 10
            )
            assert pending["consumer"] == b"surviving/w1"  # moved by XAUTOCLAIM
            assert pending["times_delivered"] == 2
    for item in claimed:
        await surviving.complete(item)
    following = await surviving.take("surviving/w2", limit=10, wait=0)
    assert sorted(d.notification_id for d in following) == ["a-1", "b-1", "c-1"]
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        for subscription_id in "abc":
            consumers = await client.xinfo_consumers(
                f"{redis_prefix}:outbox:{subscription_id}", GROUP
            )
            assert [c["name"] for c in consumers] == [b"surviving/w2"]


async def test_nothing_accepted_is_lost_when_redis_is_killed_and_restarted(
    own_redis: RedisServer,
) -> None:
    store = RedisStore.from_url(own_redis.url, prefix="p", visibility_timeout=0.2)
    try:
        for subscription_id in "ab":
            await store.add_subscription(subscription(subscription_id, created_at=1.0))
        await store.enqueue([delivery(s, n) for n in range(10) for s in "ab"])
        a0, b0 = await store.take("w1", limit=2, wait=0)
        await store.complete(a0)
        await store.dead_letter(b0, reason="410 Gone")
        assert len(await store.take("w1", limit=2, wait=0)) == 2  # in flight when Redis dies
        token = await store.acquire("emitter", "r1", ttl=30)
        generation = await store.subscriptions_generation()

        own_redis.kill()
        with pytest.raises(BackendUnavailableError):
            await store.depth()
        own_redis.restart()

        assert [r.subscription_id for r in await store.list_subscriptions()] == ["a", "b"]
        assert await store.subscriptions_generation() == generation
        assert await store.depth() == 18
        [dead] = await store.dead_letters()
        assert dead.delivery.delivery_id == b0.delivery_id
        assert await store.holder("emitter") == "r1"
        assert await store.acquire("emitter", "r1", ttl=30) == token
        await asyncio.sleep(0.25)  # the deliveries in flight are offered again
        got: dict[str, list[str]] = defaultdict(list)
        for _ in range(100):
            if not (taken := await store.take("w2", limit=5, wait=0)):
                break
            for item in taken:
                got[item.subscription_id].append(item.notification_id)
                await store.complete(item)
        assert got == {s: [f"{s}-{n}" for n in range(1, 10)] for s in "ab"}
        assert await store.depth() == 0
    finally:
        await store.aclose()


async def test_store_raises_backend_unavailable_while_redis_is_down(
    own_redis: RedisServer,
) -> None:
    store = RedisStore.from_url(own_redis.url, prefix="p")
    try:
        await store.add_subscription(subscription("s1"))
        await store.enqueue([delivery("s1")])
        [taken] = await store.take("w1", limit=1, wait=0)
        own_redis.kill()
        calls = [
            store.ping(),
            store.add_subscription(subscription("s2")),
            store.get_subscription("s1"),
            store.list_subscriptions(),
            store.remove_subscription("s1"),
            store.subscriptions_generation(),
            store.enqueue([delivery("s1", 1)]),
            store.take("w1", limit=1, wait=0.1),
            store.complete(taken),
            store.retry_later(taken, at=time.time(), error="x"),
            store.dead_letter(taken, reason="x"),
            store.dead_letters(),
            store.replay("0-1"),
            store.depth(),
            store.acquire("emitter", "r1", ttl=5),
            store.release("emitter", "r1"),
            store.holder("emitter"),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError) as caught:
                await call
            assert caught.value.status == 503
            assert caught.value.detail.startswith("store unavailable: ")
            assert "127.0.0.1" not in caught.value.detail
            assert time.monotonic() - started < 3
        own_redis.restart()
        await store.ping()
        await store.complete(taken)
        assert await store.depth() == 0
    finally:
        await store.aclose()


async def test_every_key_is_under_the_prefix(own_redis: RedisServer) -> None:
    store = RedisStore.from_url(own_redis.url, prefix="gw-7")
    try:
        await store.add_subscription(subscription("s1"))
        await store.add_subscription(subscription("s2"))
        await store.enqueue([delivery("s1", n) for n in range(3)] + [delivery("s2")])
        first, second = await store.take("w1", limit=5, wait=0)
        await store.retry_later(first, at=time.time() + 60, error="x")
        await store.dead_letter(second, reason="x")
        await store.acquire("emitter", "r1", ttl=5)
        await store.remove_subscription("s2")
        async with redis.asyncio.Redis.from_url(own_redis.url) as client:
            keys = [key.decode() async for key in client.scan_iter(match="*")]
        assert keys
        assert all(key.startswith("gw-7:") for key in keys), keys
    finally:
        await store.aclose()


async def test_enqueue_of_a_thousand_and_take_and_complete_are_one_round_trip_each(
    replica: ReplicaFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = replica()
    for i in range(100):
        await store.add_subscription(subscription(f"s{i}"))
    client = store._redis
    commands: list[str] = []
    execute: Callable[..., Awaitable[Any]] = client.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]))
        return await execute(*args, **options)

    monkeypatch.setattr(client, "execute_command", counting)
    started = time.monotonic()
    ids = await store.enqueue([delivery(f"s{i % 100}", i) for i in range(1000)])
    elapsed = time.monotonic() - started
    assert len(ids) == 1000
    assert commands in (["EVALSHA"], ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]), commands
    assert elapsed < 1.0
    await store.take("warm", limit=1, wait=0)  # loads the take script
    commands.clear()
    taken = await store.take("w1", limit=100, wait=0)
    assert len(taken) == 99 and commands == ["EVALSHA"]
    await store.complete(taken[0])  # loads the complete script
    commands.clear()
    await store.complete(taken[1])
    assert commands == ["EVALSHA"]


async def test_store_reaches_redis_through_sentinel(own_redis: RedisServer, tmp_path: Path) -> None:
    with redis_sentinel(tmp_path / "sentinel", master_port=own_redis.port) as port:
        by_url = RedisStore.from_url(
            f"redis+sentinel://127.0.0.1:{port}/0?master=mymaster", prefix="p"
        )
        by_argument = RedisStore.from_url(
            f"redis://127.0.0.1:{port}", prefix="p", sentinel_master="mymaster"
        )
        try:
            await by_url.add_subscription(subscription("s1"))
            await by_url.enqueue([delivery("s1")])
            assert await by_argument.get_subscription("s1") is not None
            [taken] = await by_argument.take("w1", limit=1, wait=0)
            assert taken.notification_id == "s1-0"
        finally:
            await by_url.aclose()
            await by_argument.aclose()
    async with redis.asyncio.Redis.from_url(own_redis.url) as client:
        assert await client.hexists("p:subscriptions", "s1")


@pytest.mark.parametrize(
    ("url", "sentinels", "db"),
    [
        ("redis+sentinel://h1:26379,h2:26380/2?master=m", [("h1", 26379), ("h2", 26380)], 2),
        ("redis+sentinel://:pw@[::1],h2?master=m", [("::1", 26379), ("h2", 26379)], 0),
    ],
)
async def test_sentinel_urls_are_parsed(
    url: str, sentinels: list[tuple[str, int]], db: int
) -> None:
    store = RedisStore.from_url(url)
    try:
        pool_kwargs = [client.connection_pool.connection_kwargs for client in store._owned]
        assert [(kw["host"], kw["port"]) for kw in pool_kwargs] == sentinels
        assert store._redis.connection_pool.connection_kwargs["db"] == db
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h1:26379/0",
        "redis+sentinel:///0?master=m",
        "redis+sentinel://h1:x?master=m",
    ],
)
def test_bad_sentinel_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"master|sentinel|port"):
        RedisStore.from_url(url)


def test_a_missing_redis_server_binary_is_an_error_not_a_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(RedisServerError, match="make test"), redis_server(tmp_path):
        pass
