"""The store contract: every test runs against the in-memory store and the Redis store."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import pytest

from netweave.errors import ConflictError
from netweave.store.base import (
    Delivery,
    Lease,
    Outbox,
    Store,
    SubscriptionRecord,
    SubscriptionStore,
)

StoreFactory = Callable[..., Store]


class Clock(Protocol):
    """The ``clock`` fixture: a fake clock that moves when told to."""

    def __call__(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


def subscription(
    subscription_id: str,
    *,
    callback: str | None = None,
    filter: str | None = None,
    created_at: float = 0.0,
) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=subscription_id,
        callback=callback or f"http://127.0.0.1:9/{subscription_id}",
        consumer_subscription_id=f"consumer-{subscription_id}",
        filter=filter,
        created_at=created_at,
        secret=f"secret-{subscription_id}",
    )


def delivery(subscription_id: str, n: int = 0, *, body: bytes | None = None) -> Delivery:
    return Delivery(
        subscription_id=subscription_id,
        notification_id=f"{subscription_id}-{n}",
        callback=f"http://127.0.0.1:9/{subscription_id}",
        body=body if body is not None else b'{"n": %d}' % n,
        event_time=1_700_000_000.125 + n,
    )


async def add(store: Store, *subscription_ids: str) -> None:
    for subscription_id in subscription_ids:
        await store.add_subscription(subscription(subscription_id))


async def drain(store: Store, *, limit: int = 10, rounds: int = 500) -> list[Delivery]:
    """Take and complete until nothing is due; what was taken, in order."""
    seen: list[Delivery] = []
    for _ in range(rounds):
        batch = await store.take("drain", limit=limit, wait=0)
        if not batch:
            return seen
        seen.extend(batch)
        for item in batch:
            await store.complete(item)
    raise AssertionError(f"still taking after {rounds} rounds")


# -- subscriptions ---------------------------------------------------------------------------


async def test_added_subscription_is_fetched_with_every_field(store: Store) -> None:
    record = SubscriptionRecord(
        subscription_id="s1",
        callback="https://smo.example/notify?x=1",
        consumer_subscription_id="c-1",
        filter="(eq,objectType,ResourceInfo)",
        created_at=1_700_000_000.5,
        secret="k3y",
    )
    await store.add_subscription(record)
    assert await store.get_subscription("s1") == record
    assert await store.get_subscription("nope") is None


async def test_subscriptions_are_listed_oldest_first(store: Store) -> None:
    for subscription_id, created_at in [("c", 3.0), ("a", 1.0), ("b", 2.0), ("x", 5.0), ("y", 5.0)]:
        await store.add_subscription(subscription(subscription_id, created_at=created_at))
    listed = [record.subscription_id for record in await store.list_subscriptions()]
    assert listed == ["a", "b", "c", "x", "y"]


async def test_removed_subscription_is_gone(store: Store) -> None:
    await add(store, "s1", "s2")
    assert await store.remove_subscription("s1") is True
    assert await store.get_subscription("s1") is None
    assert [r.subscription_id for r in await store.list_subscriptions()] == ["s2"]
    assert await store.remove_subscription("s1") is False
    assert await store.remove_subscription("never") is False


async def test_duplicate_callback_and_filter_is_a_conflict(store: Store) -> None:
    await store.add_subscription(subscription("s1", callback="http://h/cb", filter="(eq,a,1)"))
    with pytest.raises(ConflictError):
        await store.add_subscription(subscription("s2", callback="http://h/cb", filter="(eq,a,1)"))
    await store.add_subscription(subscription("s3", callback="http://h/cb", filter="(eq,a,2)"))
    await store.add_subscription(subscription("s4", callback="http://h/other", filter="(eq,a,1)"))
    await store.add_subscription(subscription("s5", callback="http://h/cb"))
    with pytest.raises(ConflictError):
        await store.add_subscription(subscription("s6", callback="http://h/cb"))
    with pytest.raises(ConflictError):
        await store.add_subscription(subscription("s1", callback="http://h/new"))
    assert {r.subscription_id for r in await store.list_subscriptions()} == {
        "s1",
        "s3",
        "s4",
        "s5",
    }


async def test_concurrent_duplicate_adds_have_exactly_one_winner(store: Store) -> None:
    records = [subscription(f"s{i}", callback="http://h/cb", filter="(eq,a,1)") for i in range(8)]
    outcomes = await asyncio.gather(
        *(store.add_subscription(record) for record in records), return_exceptions=True
    )
    assert sum(outcome is None for outcome in outcomes) == 1
    assert all(isinstance(o, ConflictError) for o in outcomes if o is not None)
    assert len(await store.list_subscriptions()) == 1


async def test_removing_a_subscription_frees_its_callback_and_filter(store: Store) -> None:
    await store.add_subscription(subscription("s1", callback="http://h/cb"))
    await store.remove_subscription("s1")
    await store.add_subscription(subscription("s2", callback="http://h/cb"))
    assert (await store.get_subscription("s2")) is not None


async def test_generation_changes_on_every_add_and_remove(store: Store) -> None:
    seen = [await store.subscriptions_generation()]
    await add(store, "s1")
    seen.append(await store.subscriptions_generation())
    await add(store, "s2")
    seen.append(await store.subscriptions_generation())
    with pytest.raises(ConflictError):
        await store.add_subscription(subscription("s3", callback="http://127.0.0.1:9/s1"))
    assert await store.subscriptions_generation() == seen[-1]
    await store.remove_subscription("s1")
    seen.append(await store.subscriptions_generation())
    await store.remove_subscription("s1")
    assert await store.subscriptions_generation() == seen[-1]
    assert seen == sorted(set(seen))


async def test_replace_rewrites_the_record_in_place(store: Store) -> None:
    for subscription_id, created_at in [("a", 1.0), ("b", 2.0), ("c", 3.0)]:
        await store.add_subscription(subscription(subscription_id, created_at=created_at))
    before = await store.subscriptions_generation()
    current = await store.get_subscription("b")
    assert current is not None
    new = replace(
        current,
        callback="http://h/new",
        filter="(eq,objectType,ResourceInfo)",
        consumer_subscription_id="c-new",
    )
    assert await store.replace_subscription(new) is True
    assert await store.get_subscription("b") == new
    listed = await store.list_subscriptions()
    assert [r.subscription_id for r in listed] == ["a", "b", "c"]
    assert listed[1] == new
    assert await store.subscriptions_generation() > before


async def test_replacing_an_unknown_subscription_changes_nothing(store: Store) -> None:
    await add(store, "s1")
    before = await store.subscriptions_generation()
    assert await store.replace_subscription(subscription("ghost", callback="http://h/g")) is False
    assert await store.get_subscription("ghost") is None
    assert [r.subscription_id for r in await store.list_subscriptions()] == ["s1"]
    assert await store.subscriptions_generation() == before
    # nothing of the ghost's callback and filter was claimed
    await store.add_subscription(subscription("s2", callback="http://h/g"))


async def test_replace_releases_the_old_pair_and_claims_the_new_one(store: Store) -> None:
    await store.add_subscription(subscription("s1", callback="http://h/old", filter="(eq,a,1)"))
    moved = subscription("s1", callback="http://h/new", filter="(eq,a,2)")
    assert await store.replace_subscription(moved) is True
    with pytest.raises(ConflictError):
        await store.add_subscription(subscription("s2", callback="http://h/new", filter="(eq,a,2)"))
    await store.add_subscription(subscription("s3", callback="http://h/old", filter="(eq,a,1)"))
    # the pair of s1 is now the new one: removing s1 frees it (and not the old one, s3's)
    assert await store.remove_subscription("s1") is True
    await store.add_subscription(subscription("s4", callback="http://h/new", filter="(eq,a,2)"))
    with pytest.raises(ConflictError):
        await store.add_subscription(subscription("s5", callback="http://h/old", filter="(eq,a,1)"))


async def test_replace_onto_another_subscription_s_pair_is_a_conflict(store: Store) -> None:
    first = subscription("s1", callback="http://h/one", filter="(eq,a,1)")
    second = subscription("s2", callback="http://h/two")
    await store.add_subscription(first)
    await store.add_subscription(second)
    before = await store.subscriptions_generation()
    with pytest.raises(ConflictError):
        await store.replace_subscription(
            replace(second, callback="http://h/one", filter="(eq,a,1)")
        )
    assert await store.get_subscription("s1") == first
    assert await store.get_subscription("s2") == second
    assert await store.subscriptions_generation() == before
    # both still hold their own pair
    for taken in (first, second):
        with pytest.raises(ConflictError):
            await store.add_subscription(replace(taken, subscription_id="other"))


async def test_replace_keeping_the_pair_is_not_a_conflict(store: Store) -> None:
    original = subscription("s1", callback="http://h/cb", filter="(eq,a,1)")
    await store.add_subscription(original)
    renamed = replace(original, consumer_subscription_id="renamed")
    assert await store.replace_subscription(renamed) is True
    assert await store.get_subscription("s1") == renamed
    with pytest.raises(ConflictError):
        await store.add_subscription(replace(original, subscription_id="s2"))


async def test_the_same_pair_in_another_tenant_is_not_a_replace_conflict(store: Store) -> None:
    await store.add_subscription(replace(subscription("a1", callback="http://h/x"), tenant="a"))
    mine = replace(subscription("b1", callback="http://h/y"), tenant="b")
    await store.add_subscription(mine)
    moved = replace(mine, callback="http://h/x")
    assert await store.replace_subscription(moved) is True
    assert await store.get_subscription("b1") == moved


async def test_concurrent_replaces_onto_one_pair_have_exactly_one_winner(store: Store) -> None:
    records = [subscription(f"s{i}") for i in range(8)]
    for record in records:
        await store.add_subscription(record)
    outcomes = await asyncio.gather(
        *(
            store.replace_subscription(replace(record, callback="http://h/cb", filter="(eq,a,1)"))
            for record in records
        ),
        return_exceptions=True,
    )
    assert sum(outcome is True for outcome in outcomes) == 1
    assert all(isinstance(o, ConflictError) for o in outcomes if o is not True)
    stored = await store.list_subscriptions()
    assert sum(r.callback == "http://h/cb" for r in stored) == 1
    assert len(stored) == 8


async def test_replace_keeps_the_pending_deliveries_and_their_callback(store: Store) -> None:
    await add(store, "s1")
    await store.enqueue([delivery("s1", n) for n in range(3)])
    [in_flight] = await store.take("w1", limit=1, wait=0)
    current = await store.get_subscription("s1")
    assert current is not None
    assert await store.replace_subscription(replace(current, callback="http://h/new")) is True
    assert await store.depth() == 3
    await store.complete(in_flight)
    rest = await drain(store)
    assert [d.notification_id for d in rest] == ["s1-1", "s1-2"]
    # queued for the old callback, they still go there
    assert {d.callback for d in [in_flight, *rest]} == {"http://127.0.0.1:9/s1"}
    assert await store.depth() == 0


# -- outbox: order and flight ----------------------------------------------------------------


async def test_enqueue_assigns_ids_and_take_returns_the_delivery_as_enqueued(
    store: Store,
) -> None:
    await add(store, "s1")
    body = bytes(range(256)) * 400  # not UTF-8, 100 KiB
    original = delivery("s1", 7, body=body)
    ids = await store.enqueue([original, delivery("s1", 8)])
    assert len(set(ids)) == 2 and all(ids)
    [taken] = await store.take("w1", limit=5, wait=0)
    assert taken.delivery_id == ids[0]
    assert taken.body == body
    assert (taken.notification_id, taken.callback, taken.event_time) == (
        original.notification_id,
        original.callback,
        original.event_time,
    )
    assert taken.attempts == 0 and taken.last_error is None
    assert taken.first_attempt_at is not None
    assert await store.enqueue([]) == []
    assert await store.take("w1", limit=0, wait=0) == []


async def test_deliveries_of_one_subscription_come_in_enqueue_order(store: Store) -> None:
    subscription_ids = [f"s{i}" for i in range(5)]
    await add(store, *subscription_ids)
    expected: dict[str, list[str]] = defaultdict(list)
    for batch in range(4):
        items = [delivery(s, batch * 10 + n) for n in range(10) for s in subscription_ids]
        await store.enqueue(items)
        for item in items:
            expected[item.subscription_id].append(item.notification_id)
    got: dict[str, list[str]] = defaultdict(list)
    for _ in range(200):
        batch_taken = await store.take("w1", limit=3, wait=0)
        if not batch_taken:
            break
        assert len({d.subscription_id for d in batch_taken}) == len(batch_taken)
        for item in batch_taken:
            got[item.subscription_id].append(item.notification_id)
            await store.complete(item)
    assert got == expected
    assert await store.depth() == 0


async def test_one_delivery_per_subscription_is_in_flight(store: Store) -> None:
    await add(store, "s1")
    await store.enqueue([delivery("s1", n) for n in range(3)])
    [first] = await store.take("w1", limit=10, wait=0)
    assert first.notification_id == "s1-0"
    assert await store.take("w2", limit=10, wait=0) == []
    await store.complete(first)
    [second] = await store.take("w2", limit=10, wait=0)
    assert second.notification_id == "s1-1"


async def test_a_subscription_in_flight_does_not_block_another(store: Store) -> None:
    await add(store, "a", "b")
    await store.enqueue([delivery("a", 0), delivery("a", 1), delivery("b", 0), delivery("b", 1)])
    [a0] = await store.take("w1", limit=1, wait=0)
    [b0] = await store.take("w2", limit=1, wait=0)
    assert (a0.notification_id, b0.notification_id) == ("a-0", "b-0")
    assert await store.take("w3", limit=5, wait=0) == []
    await store.complete(b0)
    [b1] = await store.take("w3", limit=5, wait=0)
    assert b1.notification_id == "b-1"


async def test_take_serves_due_subscriptions_round_robin(store: Store, clock: Clock) -> None:
    await add(store, "a", "b", "c")
    await store.enqueue([delivery(s, n) for n in range(3) for s in "abc"])
    served = []
    for _ in range(9):
        clock.advance(0.001)
        [item] = await store.take("w1", limit=1, wait=0)
        served.append(item.subscription_id)
        await store.complete(item)
    assert "".join(served) == "abcabcabc"


async def test_take_hands_out_one_head_per_subscription_up_to_the_limit(store: Store) -> None:
    await add(store, "a", "b", "c")
    await store.enqueue([delivery(s, n) for n in range(3) for s in "abc"])
    batch = await store.take("w1", limit=2, wait=0)
    assert [d.notification_id for d in batch] == ["a-0", "b-0"]
    [rest] = await store.take("w1", limit=5, wait=0)
    assert rest.notification_id == "c-0"


# -- outbox: retries, visibility, removal ----------------------------------------------------


async def test_retry_later_keeps_the_head_and_its_due_time(store: Store, clock: Clock) -> None:
    await add(store, "s1")
    await store.enqueue([delivery("s1", 0), delivery("s1", 1)])
    [first] = await store.take("w1", limit=5, wait=0)
    started = first.first_attempt_at
    await store.retry_later(first, at=clock() + 10, error="503 Service Unavailable")
    await store.enqueue([delivery("s1", 2)])
    assert await store.take("w1", limit=5, wait=0) == []
    clock.advance(9.9)
    assert await store.take("w1", limit=5, wait=0) == []
    clock.advance(0.2)
    [again] = await store.take("w2", limit=5, wait=0)
    assert again.delivery_id == first.delivery_id
    assert again.attempts == 1
    assert again.last_error == "503 Service Unavailable"
    assert again.first_attempt_at == started
    await store.retry_later(again, at=clock(), error="timeout")
    [third] = await store.take("w2", limit=5, wait=0)
    assert (third.delivery_id, third.attempts, third.last_error) == (
        first.delivery_id,
        2,
        "timeout",
    )
    await store.complete(third)
    assert [d.notification_id for d in await drain(store)] == ["s1-1", "s1-2"]


async def test_a_vanished_worker_s_delivery_is_offered_again(
    make_store: StoreFactory, clock: Clock
) -> None:
    store = make_store(visibility_timeout=0.2, clock=clock)
    await add(store, "s1")
    await store.enqueue([delivery("s1", 0), delivery("s1", 1)])
    [taken] = await store.take("w1", limit=5, wait=0)
    clock.advance(0.1)
    assert await store.take("w2", limit=5, wait=0) == []
    clock.advance(0.15)
    [again] = await store.take("w2", limit=5, wait=0)
    assert again.delivery_id == taken.delivery_id
    assert again.attempts == 0
    await store.complete(again)
    [following] = await store.take("w2", limit=5, wait=0)
    assert following.notification_id == "s1-1"
    # the vanished worker reports late: harmless, the next delivery stays in flight
    await store.complete(taken)
    await store.retry_later(taken, at=clock(), error="late")
    await store.dead_letter(taken, reason="late")
    assert await store.take("w3", limit=5, wait=0) == []
    assert await store.depth() == 1
    assert await store.dead_letters() == []


async def test_removing_a_subscription_drops_its_pending_deliveries(
    store: Store, clock: Clock
) -> None:
    await add(store, "a", "b")
    await store.enqueue([delivery("a", n) for n in range(3)] + [delivery("b", 0)])
    [in_flight] = await store.take("w1", limit=1, wait=0)
    assert in_flight.subscription_id == "a"
    assert await store.remove_subscription("a") is True
    assert await store.depth() == 1
    # reports about the removed subscription's delivery in flight are harmless
    await store.complete(in_flight)
    await store.retry_later(in_flight, at=clock(), error="x")
    await store.dead_letter(in_flight, reason="x")
    assert await store.dead_letters() == []
    assert [d.notification_id for d in await drain(store)] == ["b-0"]
    assert await store.depth() == 0


# -- dead letters ----------------------------------------------------------------------------


async def test_dead_letter_releases_the_subscription_and_replay_requeues_at_the_tail(
    store: Store, clock: Clock
) -> None:
    await add(store, "s1")
    await store.enqueue([delivery("s1", 0), delivery("s1", 1)])
    [first] = await store.take("w1", limit=5, wait=0)
    await store.retry_later(first, at=clock(), error="503")
    [first] = await store.take("w1", limit=5, wait=0)
    clock.advance(1)
    await store.dead_letter(first, reason="410 Gone after 2 attempts")
    [second] = await store.take("w1", limit=5, wait=0)
    assert second.notification_id == "s1-1"

    [dead] = await store.dead_letters()
    assert dead.reason == "410 Gone after 2 attempts"
    assert dead.dead_at == clock()
    assert dead.dead_letter_id
    assert dead.delivery.delivery_id == first.delivery_id
    assert dead.delivery.notification_id == "s1-0"
    assert dead.delivery.body == first.body
    assert dead.delivery.attempts == 2
    assert dead.delivery.last_error == "503"
    assert await store.depth() == 1

    assert await store.replay(dead.dead_letter_id) is True
    assert await store.dead_letters() == []
    assert await store.replay(dead.dead_letter_id) is False
    assert await store.depth() == 2
    assert await store.take("w1", limit=5, wait=0) == []  # s1-1 is still in flight
    await store.complete(second)
    [replayed] = await store.take("w1", limit=5, wait=0)
    assert replayed.notification_id == "s1-0"
    assert replayed.delivery_id != first.delivery_id
    assert (replayed.attempts, replayed.last_error) == (0, None)
    assert replayed.body == first.body


async def test_dead_letter_keeps_the_last_error_reported(store: Store) -> None:
    await add(store, "s1")
    await store.enqueue([delivery("s1", 0)])
    [taken] = await store.take("w1", limit=1, wait=0)
    reported = replace(taken, attempts=1, last_error="HTTP 404")
    await store.dead_letter(reported, reason="permanent failure")
    [dead] = await store.dead_letters()
    assert (dead.delivery.attempts, dead.delivery.last_error) == (1, "HTTP 404")


async def test_dead_letters_are_listed_oldest_first_up_to_the_limit(store: Store) -> None:
    await add(store, "a", "b", "c")
    await store.enqueue([delivery(s) for s in "abc"])
    for item in await store.take("w1", limit=3, wait=0):
        await store.dead_letter(item, reason=f"dead {item.subscription_id}")
    assert [d.reason for d in await store.dead_letters()] == ["dead a", "dead b", "dead c"]
    assert [d.reason for d in await store.dead_letters(limit=2)] == ["dead a", "dead b"]


async def test_replay_of_a_removed_subscription_s_dead_letter_is_refused(store: Store) -> None:
    await add(store, "s1")
    await store.enqueue([delivery("s1")])
    [taken] = await store.take("w1", limit=1, wait=0)
    await store.dead_letter(taken, reason="gone")
    await store.remove_subscription("s1")
    [dead] = await store.dead_letters()
    assert await store.replay(dead.dead_letter_id) is False
    assert await store.dead_letters() == [dead]
    assert await store.replay("0-1") is False


async def test_depth_counts_pending_and_in_flight(store: Store) -> None:
    assert await store.depth() == 0
    await add(store, "a", "b")
    await store.enqueue([delivery("a", n) for n in range(3)] + [delivery("b", n) for n in range(2)])
    assert await store.depth() == 5
    a0, b0 = await store.take("w1", limit=5, wait=0)
    assert await store.depth() == 5
    await store.complete(a0)
    assert await store.depth() == 4
    await store.dead_letter(b0, reason="x")
    assert await store.depth() == 3
    [dead] = await store.dead_letters()
    await store.replay(dead.dead_letter_id)
    assert await store.depth() == 4
    await store.remove_subscription("a")
    assert await store.depth() == 2


# -- waiting ---------------------------------------------------------------------------------


async def test_take_waits_until_something_is_enqueued(make_store: StoreFactory) -> None:
    store = make_store()
    await add(store, "s1")
    waiting = asyncio.create_task(store.take("w1", limit=5, wait=5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    started = time.monotonic()
    await store.enqueue([delivery("s1")])
    [taken] = await asyncio.wait_for(waiting, 2)
    assert taken.notification_id == "s1-0"
    assert time.monotonic() - started < 0.5


async def test_take_wakes_when_a_retry_becomes_due(make_store: StoreFactory) -> None:
    store = make_store()
    await add(store, "s1")
    await store.enqueue([delivery("s1")])
    [taken] = await store.take("w1", limit=1, wait=0)
    await store.retry_later(taken, at=time.time() + 0.15, error="503")
    started = time.monotonic()
    [again] = await store.take("w1", limit=1, wait=3)
    assert again.delivery_id == taken.delivery_id
    assert 0.1 <= time.monotonic() - started < 0.6


async def test_take_gives_up_after_waiting(make_store: StoreFactory) -> None:
    store = make_store()
    started = time.monotonic()
    assert await store.take("w1", limit=1, wait=0.1) == []
    assert 0.09 <= time.monotonic() - started < 0.6


# -- lease -----------------------------------------------------------------------------------


async def test_lease_is_held_renewed_and_taken_over_with_a_growing_token(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    assert await store.holder("emitter") is None
    first = await store.acquire("emitter", "r1", ttl=0.3)
    assert first is not None
    assert await store.acquire("emitter", "r2", ttl=0.3) is None
    assert await store.holder("emitter") == "r1"
    assert await store.acquire("emitter", "r1", ttl=0.3) == first  # renewal
    await asyncio.sleep(0.4)
    assert await store.holder("emitter") is None
    second = await store.acquire("emitter", "r2", ttl=5)
    assert second is not None and second > first
    assert await store.acquire("emitter", "r1", ttl=5) is None
    await store.release("emitter", "r1")  # not the holder: no effect
    assert await store.holder("emitter") == "r2"
    await store.release("emitter", "r2")
    assert await store.holder("emitter") is None
    third = await store.acquire("emitter", "r1", ttl=5)
    assert third is not None and third > second
    assert await store.acquire("other", "r2", ttl=5) is not None  # leases are independent


async def test_ping_and_aclose(store: Store) -> None:
    await store.ping()
    assert isinstance(store, SubscriptionStore)
    assert isinstance(store, Outbox)
    assert isinstance(store, Lease)


async def test_remembered_keys_are_recalled_until_they_expire(store: Store, clock: Clock) -> None:
    assert await store.recalled([]) == set()
    await store.remember(["a", "b"], ttl=0.3)
    await store.remember([], ttl=1)
    assert await store.recalled(["a", "b", "c"]) == {"a", "b"}
    deadline = asyncio.get_running_loop().time() + 5
    while await store.recalled(["a", "b"]):
        assert asyncio.get_running_loop().time() < deadline, "memo never expired"
        clock.advance(0.05)  # the memory store's clock; Redis expires in real time
        await asyncio.sleep(0.05)
