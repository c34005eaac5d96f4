"""Micro-benchmark of subscription matching: the index against evaluating every filter.

Builds 10,000 subscriptions (40 % ``objectType`` + ``eq resourcePoolId``, 30 %
``objectType`` only, 20 % ``eq`` on an ``extensions`` path, which the index cannot use,
10 % without filter) and 1,000 create/modify/delete events of pools, resources,
deployment managers and resource types, then times ``SubscriptionIndex.match`` and a
brute-force loop over every filter on the same events (both evaluate the same wire
objects; both results are checked to be equal). Prints µs per event, the speed-up and
the median of each over the repetitions.

    python bench/matching.py [--subscriptions 10000] [--events 1000] [--repeat 5] [--zones 50]

The index tests alternatives with the same terms once for all their subscriptions, so the
cost of the unindexable 20 % grows with the number of *distinct* filters among them:
``--zones 50`` gives 50 distinct ones, ``--zones 100000`` makes nearly all 2,000 distinct
(the worst case).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence

from netweave.adapters.base import EventType, InventoryEvent
from netweave.models.inventory import (
    DeploymentManager,
    InventoryModel,
    ObjectKind,
    Resource,
    ResourcePool,
    ResourceType,
)
from netweave.notifications.matching import (
    SubscriptionIndex,
    event_objects,
    parse_subscription_filter,
)
from netweave.query import Filter
from netweave.store.base import SubscriptionRecord

POOLS = 200
CLOUD = "11111111-1111-1111-1111-111111111111"
EVENT_KINDS = [
    ObjectKind.RESOURCE,
    ObjectKind.RESOURCE,
    ObjectKind.RESOURCE,
    ObjectKind.RESOURCE,
    ObjectKind.RESOURCE_POOL,
    ObjectKind.RESOURCE_POOL,
    ObjectKind.RESOURCE_POOL,
    ObjectKind.DEPLOYMENT_MANAGER,
    ObjectKind.DEPLOYMENT_MANAGER,
    ObjectKind.RESOURCE_TYPE,
]
SUBSCRIBED_KINDS = [
    ObjectKind.RESOURCE,
    ObjectKind.RESOURCE_POOL,
    ObjectKind.DEPLOYMENT_MANAGER,
    ObjectKind.RESOURCE_TYPE,
    ObjectKind.CLOUD,
]


def pool_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def subscription_filter(rng: random.Random, n: int, zones: int) -> str | None:
    """The filter of subscription ``n``: the mix of the module docstring."""
    share = n % 10
    if share < 4:
        kind = rng.choice([ObjectKind.RESOURCE, ObjectKind.RESOURCE_POOL])
        return f"(eq,objectType,{kind});(eq,resourcePoolId,{pool_id(rng.randrange(POOLS))})"
    if share < 7:
        return f"(eq,objectType,{rng.choice(SUBSCRIBED_KINDS)})"
    if share < 9:
        return f"(eq,extensions/zone,zone-{rng.randrange(zones)})"
    return None


def subscriptions(rng: random.Random, count: int, zones: int) -> list[SubscriptionRecord]:
    return [
        SubscriptionRecord(
            subscription_id=f"sub-{n:05d}",
            callback=f"https://smo-{n % 10}.example/notify",
            filter=subscription_filter(rng, n, zones),
            created_at=float(n),
        )
        for n in range(count)
    ]


def state(rng: random.Random, kind: ObjectKind, object_id: str, zones: int) -> InventoryModel:
    zone = {"zone": f"zone-{rng.randrange(zones)}", "rack": rng.randrange(40)}
    if kind is ObjectKind.RESOURCE:
        return Resource(
            resource_id=object_id,
            resource_pool_id=pool_id(rng.randrange(POOLS)),
            resource_type_id="t-1",
            global_asset_id=f"asset-{object_id}",
            description="worker node",
            tags=["worker"],
            extensions={**zone, "cpu": 64, "memoryGiB": 256, "architecture": "x86_64"},
        )
    if kind is ObjectKind.RESOURCE_POOL:
        return ResourcePool(
            resource_pool_id=object_id,
            name=f"pool-{object_id[-4:]}",
            description="edge pool",
            o_cloud_id=CLOUD,
            global_location_id="ES-MAD-1",
            extensions=zone,
        )
    if kind is ObjectKind.DEPLOYMENT_MANAGER:
        return DeploymentManager(
            deployment_manager_id=object_id,
            name="cluster",
            description="k8s",
            o_cloud_id=CLOUD,
            service_uri="https://k8s.example:6443",
            extensions=zone,
        )
    return ResourceType(
        resource_type_id=object_id,
        name="server",
        description="d",
        vendor="acme",
        model="m1",
        version="1",
        resource_kind="PHYSICAL",
        resource_class="COMPUTE",
    )


def events(rng: random.Random, count: int, zones: int) -> list[InventoryEvent]:
    made: list[InventoryEvent] = []
    for n in range(count):
        kind = rng.choice(EVENT_KINDS)
        object_id = pool_id(rng.randrange(POOLS)) if kind is ObjectKind.RESOURCE_POOL else f"o{n}"
        event_type = rng.choice([EventType.CREATE, EventType.MODIFY, EventType.MODIFY])
        if rng.random() < 0.1:
            event_type = EventType.DELETE
        prior = None if event_type is EventType.CREATE else state(rng, kind, object_id, zones)
        post = None if event_type is EventType.DELETE else state(rng, kind, object_id, zones)
        made.append(InventoryEvent(kind, event_type, object_id, prior=prior, post=post))
    return made


def brute_force(
    parsed: Sequence[tuple[SubscriptionRecord, Filter | None]], event: InventoryEvent
) -> list[SubscriptionRecord]:
    """Evaluate every filter, as the index would without its buckets."""
    objects = event_objects(event)
    return [
        record
        for record, compiled in parsed
        if compiled is None or any(compiled.matches(obj) for obj in objects)
    ]


def per_event_us(
    match: Callable[[InventoryEvent], list[SubscriptionRecord]], batch: Sequence[InventoryEvent]
) -> float:
    start = time.perf_counter()
    for event in batch:
        match(event)
    return (time.perf_counter() - start) / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--zones",
        type=int,
        default=50,
        help="distinct extensions/zone values: the unindexable filters are grouped by "
        "their terms, so this sets how many distinct ones the index evaluates per event",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    records = subscriptions(rng, args.subscriptions, args.zones)
    batch = events(rng, args.events, args.zones)

    start = time.perf_counter()
    index = SubscriptionIndex.build(records)
    build_ms = (time.perf_counter() - start) * 1e3
    parsed = [(record, parse_subscription_filter(record.filter)) for record in records]

    matched = 0
    for event in batch:
        found = index.match(event)
        if found != brute_force(parsed, event):
            raise SystemExit(f"index and brute force disagree on {event}")
        matched += len(found)

    indexed: list[float] = []
    brute: list[float] = []
    for round_ in range(1, args.repeat + 1):
        indexed.append(per_event_us(index.match, batch))
        brute.append(per_event_us(lambda event: brute_force(parsed, event), batch))
        print(
            f"round {round_}: index {indexed[-1]:8.1f} µs/event   "
            f"brute force {brute[-1]:9.1f} µs/event   speed-up {brute[-1] / indexed[-1]:5.1f}x"
        )

    index_us, brute_us = statistics.median(indexed), statistics.median(brute)
    print(
        f"\n{args.subscriptions:,} subscriptions (40 % objectType+resourcePoolId, "
        f"30 % objectType, 20 % extensions/zone over {args.zones:,} zones, 10 % no filter), "
        f"{args.events:,} events; "
        f"index built in {build_ms:.0f} ms; {matched / len(batch):.0f} matches/event"
    )
    print(f"median of {args.repeat}: index {index_us:.1f} µs/event")
    print(f"median of {args.repeat}: brute force {brute_us:.1f} µs/event")
    print(f"speed-up: {brute_us / index_us:.1f}x")


if __name__ == "__main__":
    main()
