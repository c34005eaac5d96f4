"""Subscription filters: parsing, matching semantics and the subscription index."""

from __future__ import annotations

from typing import Any

import pytest

from netweave.adapters.base import EventType, InventoryEvent
from netweave.errors import InvalidQueryError
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
    filter_matches,
    parse_subscription_filter,
)
from netweave.store.base import SubscriptionRecord

CLOUD = "11111111-1111-1111-1111-111111111111"


def pool(pool_id: str = "p1", name: str = "edge", **extensions: Any) -> ResourcePool:
    return ResourcePool(
        resource_pool_id=pool_id,
        name=name,
        description="a pool",
        o_cloud_id=CLOUD,
        global_location_id="ES-MAD-1",
        extensions=extensions,
    )


def resource(resource_id: str = "r1", pool_id: str = "p1", **extensions: Any) -> Resource:
    return Resource(
        resource_id=resource_id,
        resource_pool_id=pool_id,
        resource_type_id="t1",
        global_asset_id="asset",
        description="a node",
        tags=["gpu", "edge"],
        extensions=extensions,
    )


def resource_type(name: str = "server") -> ResourceType:
    return ResourceType(
        resource_type_id="t1",
        name=name,
        description="d",
        vendor="acme",
        model="m1",
        version="1",
        resource_kind="PHYSICAL",
        resource_class="COMPUTE",
    )


def manager(name: str = "dm") -> DeploymentManager:
    return DeploymentManager(
        deployment_manager_id="dm1",
        name=name,
        description="d",
        o_cloud_id=CLOUD,
        service_uri="https://k8s.example:6443",
    )


def created(state: InventoryModel) -> InventoryEvent:
    return InventoryEvent(state.kind, EventType.CREATE, state.object_id, post=state)


def modified(prior: InventoryModel, post: InventoryModel) -> InventoryEvent:
    return InventoryEvent(post.kind, EventType.MODIFY, post.object_id, prior=prior, post=post)


def deleted(state: InventoryModel) -> InventoryEvent:
    return InventoryEvent(state.kind, EventType.DELETE, state.object_id, prior=state)


def record(
    subscription_id: str, filter_text: str | None = None, created_at: float = 0.0
) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=subscription_id,
        callback=f"https://smo.example/{subscription_id}",
        filter=filter_text,
        created_at=created_at,
    )


def matched_ids(index: SubscriptionIndex, event: InventoryEvent) -> list[str]:
    return [found.subscription_id for found in index.match(event)]


def selects(filter_text: str | None, event: InventoryEvent) -> bool:
    """The index and the reference semantics agree, and say whether the filter selects."""
    index = SubscriptionIndex.build([record("s", filter_text)])
    by_index = matched_ids(index, event) == ["s"]
    assert by_index == filter_matches(parse_subscription_filter(filter_text), event)
    return by_index


# -- parsing --------------------------------------------------------------------------------


def test_no_filter_is_none() -> None:
    assert parse_subscription_filter(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "(eq,objectType,ResourcePoolInfo)",
        "[(eq,objectType,ResourcePoolInfo);(eq,name,x)|(eq,objectType,ResourceInfo)]",
        "(eq,objectType,ResourcePoolInfo);(eq,name,x)|(eq,resourceKind,PHYSICAL)",
        "(in,objectType,CloudInfo,LocationInfo,OCloudSiteInfo,ResourceTypeInfo)",
        "(eq,extensions/zone/rack,r1)",
        "(eq,elements/resourceId,x)",
        "(cont,objectType,Info)",  # not an equality: no kind check
        "(eq,globalcloudId,x);(eq,serviceUri,y)",  # CloudInfo attributes
        "(eq,oCloudSiteIds,x);(eq,civicAddress/caValue,y)",  # LocationInfo attributes
    ],
)
def test_valid_filters(text: str) -> None:
    assert parse_subscription_filter(text) is not None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty filter"),
        ("(eq,name)", "expected ','"),
        ("(eq,name,x", "unterminated"),
        ("(eq,nosuchattribute,x)", "unknown attribute 'nosuchattribute'"),
        ("(eq,name/sub,x)", "has no sub-attribute"),
        ("(eq,objectType/x,y)", "has no sub-attribute"),
        ("(eq,objectType,ResourcePool)", "unknown objectType 'ResourcePool'"),
        ("(in,objectType,ResourceInfo,Nope)", "unknown objectType 'Nope'"),
        ("(neq,objectType,resourcepoolinfo)", "unknown objectType"),
        ("(eq,name,x)|(nin,objectType,Pool)", "unknown objectType 'Pool'"),
        ("[(eq,name,x)", "expected ']'"),
    ],
)
def test_invalid_filters(text: str, fragment: str) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_subscription_filter(text)
    assert fragment in caught.value.detail
    assert caught.value.attributes["parameter"] == "filter"


# -- semantics ------------------------------------------------------------------------------


def test_event_objects_carry_object_type() -> None:
    (obj,) = event_objects(created(pool()))
    assert obj == {**pool().to_wire(), "objectType": "ResourcePoolInfo"}
    assert "objectType" not in pool().to_wire()  # the wire state itself is untouched


def test_no_filter_matches_everything() -> None:
    for event in (created(pool()), deleted(resource()), modified(manager(), manager("x"))):
        assert selects(None, event)


def test_object_type_selects_the_kind() -> None:
    text = "(eq,objectType,ResourcePoolInfo)"
    assert selects(text, created(pool()))
    assert not selects(text, created(resource()))
    assert not selects(text, created(resource_type()))
    assert selects("(in,objectType,ResourceInfo,ResourceTypeInfo)", created(resource_type()))
    assert selects("(neq,objectType,ResourceInfo)", created(resource_type()))
    assert not selects("(nin,objectType,ResourceInfo)", created(resource()))


def test_contradictory_object_types_never_match() -> None:
    text = "(eq,objectType,ResourcePoolInfo);(eq,objectType,ResourceInfo)"
    assert not selects(text, created(pool()))
    assert not selects(text, created(resource()))
    both = "(in,objectType,ResourcePoolInfo,ResourceInfo);(eq,objectType,ResourceInfo)"
    assert selects(both, created(resource()))
    assert not selects(both, created(pool()))


def test_eq_on_nested_extensions_path() -> None:
    text = "(eq,extensions/site/zone,z1)"
    assert selects(text, created(pool(site={"zone": "z1"})))
    assert selects(text, created(resource(site={"zone": "z1"})))
    assert not selects(text, created(pool(site={"zone": "z2"})))
    assert not selects(text, created(pool()))
    assert not selects(text, created(pool(site="z1")))


def test_attribute_of_another_kind_does_not_match() -> None:
    # resourceKind exists on resource types only: a positive term fails on a pool
    assert not selects("(eq,resourceKind,PHYSICAL)", created(pool()))
    assert selects("(eq,resourceKind,PHYSICAL)", created(resource_type()))
    assert selects("(neq,resourceKind,PHYSICAL)", created(pool()))


def test_alternatives() -> None:
    text = "[(eq,objectType,ResourcePoolInfo);(eq,name,core)|(eq,objectType,ResourceInfo)]"
    assert selects(text, created(pool(name="core")))
    assert not selects(text, created(pool(name="edge")))
    assert selects(text, created(resource()))
    assert not selects(text, created(manager("core")))


def test_indexed_eq_term_and_residual_terms() -> None:
    text = "(eq,objectType,ResourceInfo);(eq,resourcePoolId,p1);(cont,tags,gp)"
    assert selects(text, created(resource(pool_id="p1")))
    assert not selects(text, created(resource(pool_id="p2")))
    assert not selects(text, created(pool(pool_id="p1")))
    assert selects("(in,resourcePoolId,p0,p1)", created(pool("p1")))
    assert selects("(in,resourcePoolId,p0,p1)", created(resource(pool_id="p1")))
    assert not selects("(in,resourcePoolId,p0,p2)", created(resource(pool_id="p1")))


def test_modify_matches_prior_or_post() -> None:
    """A pool moving out of (or into) a filter is notified: prior or post must match."""
    text = "(eq,objectType,ResourcePoolInfo);(eq,extensions/zone,a)"
    assert selects(text, modified(pool(zone="a"), pool(zone="b")))  # moves out
    assert selects(text, modified(pool(zone="b"), pool(zone="a")))  # moves in
    assert selects(text, modified(pool(zone="a", n=1), pool(zone="a", n=2)))  # stays in
    assert not selects(text, modified(pool(zone="b"), pool(zone="c")))  # never in
    # the indexed term follows the same rule
    assert selects("(eq,name,old)", modified(pool(name="old"), pool(name="new")))
    assert selects("(eq,name,new)", modified(pool(name="old"), pool(name="new")))


def test_delete_uses_prior_state() -> None:
    assert selects("(eq,name,gone)", deleted(pool(name="gone")))
    assert not selects("(eq,name,other)", deleted(pool(name="gone")))
    assert selects(
        "(eq,objectType,ResourceInfo);(eq,resourcePoolId,p9)", deleted(resource(pool_id="p9"))
    )


def test_create_uses_post_state() -> None:
    assert selects("(eq,name,new)", created(pool(name="new")))
    assert not selects("(neq,name,new)", created(pool(name="new")))


# -- the index ------------------------------------------------------------------------------


def test_match_order_is_creation_order_and_deduplicated() -> None:
    records = [
        record("late", "(eq,objectType,ResourcePoolInfo)", created_at=30.0),
        record("all", None, created_at=20.0),
        record("twice", "(eq,name,edge)|(eq,objectType,ResourcePoolInfo)", created_at=10.0),
        record("tie-a", "(eq,resourcePoolId,p1)", created_at=40.0),
        record("tie-b", "(eq,extensions/zone,a)", created_at=40.0),
        record("miss", "(eq,objectType,ResourceInfo)", created_at=0.0),
    ]
    index = SubscriptionIndex.build(records)
    event = modified(pool(zone="a"), pool(zone="a", n=1))
    assert matched_ids(index, event) == ["twice", "all", "late", "tie-a", "tie-b"]


def test_add_remove_and_len() -> None:
    index = SubscriptionIndex()
    assert len(index) == 0
    assert matched_ids(index, created(pool())) == []
    index.add(record("a", "(eq,resourcePoolId,p1)"))
    index.add(record("b", "(eq,objectType,ResourcePoolInfo)"))
    index.add(record("c"))
    index.add(record("d", "(eq,extensions/zone,a)"))
    assert len(index) == 4
    assert "a" in index
    assert matched_ids(index, created(pool(zone="a"))) == ["a", "b", "c", "d"]
    assert index.remove("a") is True
    assert index.remove("a") is False
    assert "a" not in index
    assert matched_ids(index, created(pool(zone="a"))) == ["b", "c", "d"]
    assert index.remove("c") and index.remove("d") and index.remove("b")
    assert len(index) == 0
    assert matched_ids(index, created(pool(zone="a"))) == []
    index.add(record("a", "(eq,resourcePoolId,p1)"))
    assert matched_ids(index, created(pool())) == ["a"]


def test_add_same_id_replaces() -> None:
    index = SubscriptionIndex.build([record("a", "(eq,name,x)"), record("b")])
    index.add(record("a", "(eq,name,edge)"))
    assert len(index) == 2
    assert matched_ids(index, created(pool(name="edge"))) == ["b", "a"]
    assert matched_ids(index, created(pool(name="x"))) == ["b"]


def test_add_invalid_filter_leaves_index_unchanged() -> None:
    index = SubscriptionIndex.build([record("a", "(eq,name,x)")])
    with pytest.raises(InvalidQueryError):
        index.add(record("a", "(eq,bogus,x)"))
    assert len(index) == 1
    assert matched_ids(index, created(pool(name="x"))) == ["a"]


def test_build_rejects_invalid_filter() -> None:
    with pytest.raises(InvalidQueryError):
        SubscriptionIndex.build([record("a", "(eq,objectType,Pools)")])


def test_records_in_creation_order() -> None:
    index = SubscriptionIndex.build([record("b", created_at=2.0), record("a", created_at=1.0)])
    assert [found.subscription_id for found in index.records()] == ["a", "b"]


def test_removal_cleans_buckets() -> None:
    filters = [f"(eq,objectType,ResourceInfo);(eq,resourcePoolId,p{i % 7})" for i in range(50)]
    filters += [f"(eq,objectType,ResourceInfo);(eq,extensions/zone,z{i % 3})" for i in range(30)]
    filters += ["(eq,objectType,ResourceInfo)"] * 10
    index = SubscriptionIndex.build(record(f"s{i}", text) for i, text in enumerate(filters))
    bucket = index._kinds[ObjectKind.RESOURCE]
    assert len(bucket.by_value["resourcePoolId"]) == 7  # one value bucket per pool
    assert len(bucket.scan) == 4  # identical filters share one group
    everyone = [f"s{i}" for i in range(50, 90) if i >= 80 or (i - 50) % 3 == 0]
    pool_three = [f"s{i}" for i in range(50) if i % 7 == 3]
    assert matched_ids(index, created(resource(pool_id="p3", zone="z0"))) == pool_three + everyone
    for i in range(0, len(filters), 2):
        index.remove(f"s{i}")
    assert matched_ids(index, created(resource(pool_id="p3", zone="z0"))) == [
        found for found in pool_three + everyone if int(found[1:]) % 2
    ]
    for i in range(1, len(filters), 2):
        index.remove(f"s{i}")
    assert len(index) == 0
    assert bucket.by_value == {}
    assert bucket.scan == {}
