"""The subscription index returns exactly what evaluating every filter returns.

Seeded random filters (500) over a few attributes with small value domains, so that
terms often hit, and random events (200) of several kinds, including pools whose
top-level ``name`` is a number, a bool or a list (the index falls back to evaluating every
term there) and objects that lack the attributes.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import pytest

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
    filter_matches,
    parse_subscription_filter,
)
from netweave.query import Filter
from netweave.store.base import SubscriptionRecord

KINDS = ["ResourcePoolInfo", "ResourceInfo", "DeploymentManagerInfo", "ResourceTypeInfo"]
NAMES = ["a", "b", "c", "1", "1.0", "true"]
POOLS = ["p1", "p2", "p3"]
ZONES = ["z1", "z2"]
CPUS = ["2", "4", "8"]
TAGS = ["t1", "t2"]
DESCRIPTIONS = ["d1", "d2"]

#: attribute -> (value domain, operators)
ATTRIBUTES: dict[str, tuple[list[str], list[str]]] = {
    "name": (NAMES, ["eq", "eq", "eq", "neq", "in", "nin", "cont", "gt"]),
    "resourcePoolId": (POOLS, ["eq", "eq", "eq", "in", "neq", "nin"]),
    "description": (DESCRIPTIONS, ["eq", "neq", "in"]),
    "extensions/zone": (ZONES, ["eq", "neq", "in"]),
    "extensions/cpu": (CPUS, ["eq", "gt", "lte"]),
    "tags": (TAGS, ["eq", "neq", "in"]),
    "objectType": (KINDS, ["eq", "eq", "eq", "in", "neq", "nin"]),
}


class OddPool(ResourcePool):
    """A pool whose name may be any JSON value, to exercise non-string indexed values."""

    name: Any  # type: ignore[assignment]


def random_term(rng: random.Random) -> str:
    attribute = rng.choice(list(ATTRIBUTES))
    values, operators = ATTRIBUTES[attribute]
    op = rng.choice(operators)
    if op in ("in", "nin"):
        chosen = rng.sample(values, rng.randint(1, min(3, len(values))))
    else:
        chosen = [rng.choice(values)]
    return f"({op},{attribute},{','.join(chosen)})"


def random_filter(rng: random.Random) -> str | None:
    if rng.random() < 0.08:
        return None
    alternatives = [
        ";".join(random_term(rng) for _ in range(rng.randint(1, 3)))
        for _ in range(rng.choice([1, 1, 1, 2, 3]))
    ]
    text = "|".join(alternatives)
    return f"[{text}]" if len(alternatives) > 1 and rng.random() < 0.5 else text


def random_extensions(rng: random.Random) -> dict[str, Any]:
    extensions: dict[str, Any] = {}
    if rng.random() < 0.7:
        extensions["zone"] = rng.choice(ZONES)
    if rng.random() < 0.7:
        extensions["cpu"] = int(rng.choice(CPUS))
    return extensions


def random_state(rng: random.Random, kind: ObjectKind) -> InventoryModel:
    description = rng.choice(DESCRIPTIONS)
    if kind is ObjectKind.RESOURCE_POOL:
        odd = rng.random() < 0.3
        odd_name = rng.choice([5, 1, 1.0, True, False, ["a", "b"], [], None, {"a": 1}])
        return (OddPool if odd else ResourcePool)(
            resource_pool_id=rng.choice(POOLS),
            name=odd_name if odd else rng.choice(NAMES),
            description=description,
            o_cloud_id="c",
            global_location_id="g",
            extensions=random_extensions(rng),
        )
    if kind is ObjectKind.RESOURCE:
        return Resource(
            resource_id=f"r{rng.randint(1, 5)}",
            resource_pool_id=rng.choice(POOLS),
            resource_type_id="t",
            global_asset_id="asset",
            description=description,
            tags=rng.sample(TAGS, rng.randint(0, 2)),
            extensions=random_extensions(rng),
        )
    if kind is ObjectKind.DEPLOYMENT_MANAGER:
        return DeploymentManager(
            deployment_manager_id="dm",
            name=rng.choice(NAMES),
            description=description,
            o_cloud_id="c",
            service_uri="https://k8s.example",
            extensions=random_extensions(rng),
        )
    return ResourceType(
        resource_type_id="t",
        name=rng.choice(NAMES),
        description=description,
        vendor="v",
        model="m",
        version="1",
        resource_kind="PHYSICAL",
        resource_class="COMPUTE",
    )


def random_event(rng: random.Random) -> InventoryEvent:
    kind = ObjectKind(rng.choice(KINDS))
    event_type = rng.choice(list(EventType))
    prior = random_state(rng, kind) if event_type is not EventType.CREATE else None
    post = random_state(rng, kind) if event_type is not EventType.DELETE else None
    state = post if post is not None else prior
    assert state is not None
    return InventoryEvent(kind, event_type, state.object_id, prior=prior, post=post)


def brute_force(records: list[SubscriptionRecord], event: InventoryEvent) -> list[str]:
    """Evaluate every filter (in creation order, as the records are listed)."""
    return [
        found.subscription_id for found in records if filter_matches(_parsed(found.filter), event)
    ]


@functools.cache
def _parsed(text: str | None) -> Filter | None:
    return parse_subscription_filter(text)


def indexed(index: SubscriptionIndex, event: InventoryEvent) -> list[str]:
    return [found.subscription_id for found in index.match(event)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_index_equals_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    records = [
        SubscriptionRecord(f"s{i:03}", "https://smo.example/cb", filter=random_filter(rng))
        for i in range(500)
    ]
    events = [random_event(rng) for _ in range(200)]
    index = SubscriptionIndex.build(records)
    assert len(index) == len(records)

    total = 0
    for event in events:
        expected = brute_force(records, event)
        assert indexed(index, event) == expected, event
        total += len(expected)
    assert 0 < total < len(records) * len(events)  # the generator exercises both outcomes

    # remove a random half, then add some back (they go last in creation order)
    removed = rng.sample(records, len(records) // 2)
    for found in removed:
        assert index.remove(found.subscription_id)
    readded = removed[: len(removed) // 3]
    for found in readded:
        index.add(found)
    removed_ids = {found.subscription_id for found in removed}
    remaining = [found for found in records if found.subscription_id not in removed_ids]
    remaining += readded
    assert len(index) == len(remaining)
    for event in events:
        assert indexed(index, event) == brute_force(remaining, event), event


def test_generator_covers_the_fallback_path() -> None:
    """Some generated pools have a non-string name, and some filters index on name."""
    rng = random.Random(1)
    events = [random_event(rng) for _ in range(200)]
    odd = [
        event
        for event in events
        if any(
            state is not None and not isinstance(state.to_wire().get("name"), str | None)
            for state in (event.prior, event.post)
        )
    ]
    assert odd
    index = SubscriptionIndex.build(
        [
            SubscriptionRecord("n1", "cb", filter="(eq,name,1)"),
            SubscriptionRecord("nt", "cb", filter="(eq,name,true)"),
            SubscriptionRecord("na", "cb", filter="(in,name,a,c)"),
        ]
    )
    pool = OddPool(
        resource_pool_id="p", name=1.0, description="d", o_cloud_id="c", global_location_id="g"
    )
    assert indexed(index, InventoryEvent(pool.kind, EventType.CREATE, "p", post=pool)) == ["n1"]
    flag = pool.model_copy(update={"name": True})
    assert indexed(index, InventoryEvent(pool.kind, EventType.CREATE, "p", post=flag)) == ["nt"]
    listed = pool.model_copy(update={"name": ["b", "c"]})
    assert indexed(index, InventoryEvent(pool.kind, EventType.CREATE, "p", post=listed)) == ["na"]
