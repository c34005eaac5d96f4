"""The InventoryChangeNotification body and the objectRef URLs."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pydantic
import pytest

from netweave.adapters.base import EventType, InventoryEvent
from netweave.models.inventory import (
    DeploymentManager,
    InventoryModel,
    LocationInfo,
    ObjectKind,
    OCloudInfo,
    OCloudSiteInfo,
    Resource,
    ResourcePool,
    ResourceType,
)
from netweave.notifications.payload import (
    InventoryChangeNotification,
    inventory_notification,
    object_ref,
    prepare_notification,
)
from netweave.store.base import SubscriptionRecord

API_ROOT = "https://o2ims.example.net"
INV = f"{API_ROOT}/o2ims-infrastructureInventory/v1"
NOTIFICATION_ID = "6f1c4f55-9a0e-4c61-9d1b-6a0d4c0f7a11"
CONSUMER_ID = "0b0e1c1e-2a7f-4d0f-8f43-3f7b3a4b5c6d"
CLOUD = "11111111-1111-1111-1111-111111111111"

SUBSCRIPTION = SubscriptionRecord(
    subscription_id="s1",
    callback="https://smo.example/cb",
    consumer_subscription_id=CONSUMER_ID,
)
ANONYMOUS = SubscriptionRecord(subscription_id="s2", callback="https://smo.example/cb")


def pool(name: str = "edge", **extensions: Any) -> ResourcePool:
    return ResourcePool(
        resource_pool_id="p-1",
        name=name,
        description="a pool",
        o_cloud_id=CLOUD,
        global_location_id="ES-MAD-1",
        extensions=extensions,
    )


RESOURCE = Resource(
    resource_id="r-1",
    resource_pool_id="p-1",
    resource_type_id="t-1",
    global_asset_id="asset",
    description="a node",
)
RESOURCE_TYPE = ResourceType(
    resource_type_id="t-1",
    name="server",
    description="d",
    vendor="acme",
    model="m",
    version="1",
    resource_kind="PHYSICAL",
    resource_class="COMPUTE",
)
MANAGER = DeploymentManager(
    deployment_manager_id="dm-1",
    name="dm",
    description="d",
    o_cloud_id=CLOUD,
    service_uri="https://k8s.example:6443",
)
LOCATION = LocationInfo(global_location_id="ES-MAD-1", name="Madrid", description="d")
SITE = OCloudSiteInfo(
    o_cloud_site_id="site-1", global_location_id="ES-MAD-1", name="s", description="d"
)
CLOUD_INFO = OCloudInfo(
    o_cloud_id=CLOUD,
    global_cloud_id=CLOUD,
    globalcloud_id=CLOUD,
    name="netweave",
    description="d",
    service_uri=API_ROOT,
)


def created(state: InventoryModel) -> InventoryEvent:
    return InventoryEvent(state.kind, EventType.CREATE, state.object_id, post=state)


def modified(prior: InventoryModel, post: InventoryModel) -> InventoryEvent:
    return InventoryEvent(post.kind, EventType.MODIFY, post.object_id, prior=prior, post=post)


def deleted(state: InventoryModel) -> InventoryEvent:
    return InventoryEvent(state.kind, EventType.DELETE, state.object_id, prior=state)


def render(event: InventoryEvent, subscription: SubscriptionRecord = SUBSCRIPTION) -> bytes:
    return inventory_notification(
        event,
        subscription,
        notification_id=NOTIFICATION_ID,
        object_ref=object_ref(API_ROOT, event),
    )


# -- payload shapes -------------------------------------------------------------------------


def test_create_payload() -> None:
    body = orjson.loads(render(created(pool())))
    assert list(body) == [
        "notificationId",
        "consumerSubscriptionId",
        "notificationEventType",
        "objectRef",
        "postObjectState",
    ]
    assert body == {
        "notificationId": NOTIFICATION_ID,
        "consumerSubscriptionId": CONSUMER_ID,
        "notificationEventType": 0,
        "objectRef": f"{INV}/resourcePools/p-1",
        "postObjectState": pool().to_wire(),
    }


def test_modify_payload() -> None:
    before, after = pool("old", zone="a"), pool("new", zone="b")
    body = orjson.loads(render(modified(before, after)))
    assert list(body) == [
        "notificationId",
        "consumerSubscriptionId",
        "notificationEventType",
        "objectRef",
        "priorObjectState",
        "postObjectState",
    ]
    assert body["notificationEventType"] == 1
    assert body["objectRef"] == f"{INV}/resourcePools/p-1"
    assert body["priorObjectState"] == before.to_wire()
    assert body["postObjectState"] == after.to_wire()
    assert body["priorObjectState"]["extensions"] == {"zone": "a"}


def test_delete_payload() -> None:
    body = orjson.loads(render(deleted(RESOURCE)))
    assert list(body) == [
        "notificationId",
        "consumerSubscriptionId",
        "notificationEventType",
        "priorObjectState",
    ]
    assert body["notificationEventType"] == 2
    assert body["priorObjectState"] == RESOURCE.to_wire()


def test_delete_drops_an_object_ref_given_anyway() -> None:
    event = deleted(pool())
    raw = inventory_notification(
        event, SUBSCRIPTION, notification_id=NOTIFICATION_ID, object_ref="https://x/y"
    )
    assert "objectRef" not in orjson.loads(raw)


@pytest.mark.parametrize("event", [created(MANAGER), modified(MANAGER, MANAGER), deleted(MANAGER)])
def test_consumer_subscription_id_only_when_set(event: InventoryEvent) -> None:
    body = orjson.loads(render(event, ANONYMOUS))
    assert "consumerSubscriptionId" not in body
    assert body["notificationId"] == NOTIFICATION_ID


def test_states_are_full_wire_objects_not_strings() -> None:
    body = orjson.loads(render(created(RESOURCE)))
    state = body["postObjectState"]
    assert isinstance(state, dict)
    assert state["resourceId"] == "r-1"
    assert state["resourcePoolId"] == "p-1"
    assert "objectType" not in state
    assert set(state) == set(RESOURCE.to_wire())


def test_cloud_info_payload() -> None:
    changed = CLOUD_INFO.model_copy(update={"description": "new"})
    event = InventoryEvent(ObjectKind.CLOUD, EventType.MODIFY, CLOUD, CLOUD_INFO, changed)  # type: ignore[arg-type]
    body = orjson.loads(render(event))
    assert body["objectRef"] == INV
    assert body["postObjectState"]["description"] == "new"
    assert body["postObjectState"]["globalcloudId"] == CLOUD


def test_prepared_notification_renders_each_subscriber() -> None:
    event = modified(pool("a"), pool("b"))
    prepared = prepare_notification(event, object_ref=object_ref(API_ROOT, event))
    first = prepared.render(SUBSCRIPTION, notification_id=NOTIFICATION_ID)
    assert first == render(event)
    second = orjson.loads(prepared.render(ANONYMOUS, notification_id=str(uuid.uuid4())))
    assert second["postObjectState"] == pool("b").to_wire()
    assert "consumerSubscriptionId" not in second


# -- validation against the documented model ------------------------------------------------

EXACT_KEYS = {
    EventType.CREATE: {"notificationId", "notificationEventType", "objectRef", "postObjectState"},
    EventType.MODIFY: {
        "notificationId",
        "notificationEventType",
        "objectRef",
        "priorObjectState",
        "postObjectState",
    },
    EventType.DELETE: {"notificationId", "notificationEventType", "priorObjectState"},
}

EVENTS = [
    created(pool()),
    modified(pool("a"), pool("b")),
    deleted(pool()),
    created(RESOURCE),
    deleted(RESOURCE),
    modified(RESOURCE_TYPE, RESOURCE_TYPE),
    created(MANAGER),
    created(LOCATION),
    deleted(SITE),
]


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("subscription", [SUBSCRIPTION, ANONYMOUS])
def test_payload_validates_against_model(
    event: InventoryEvent, subscription: SubscriptionRecord
) -> None:
    raw = render(event, subscription)
    model = InventoryChangeNotification.model_validate_json(raw)
    assert model.notification_event_type is event.type
    assert str(model.notification_id) == NOTIFICATION_ID
    expected = set(EXACT_KEYS[event.type])
    if subscription.consumer_subscription_id is not None:
        expected.add("consumerSubscriptionId")
    assert set(orjson.loads(raw)) == expected
    assert orjson.loads(model.model_dump_json(by_alias=True, exclude_none=True)) == orjson.loads(
        raw
    )


STATE = {"resourcePoolId": "p"}
PRIOR = {"priorObjectState": STATE}
POST = {"postObjectState": STATE}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"notificationEventType": 0}, "requires postObjectState"),
        ({"notificationEventType": 0, **POST, **PRIOR}, "forbids priorObjectState"),
        ({"notificationEventType": 1, **POST}, "requires priorObjectState"),
        ({"notificationEventType": 1, **PRIOR}, "requires postObjectState"),
        ({"notificationEventType": 2, **PRIOR, "objectRef": "x"}, "forbids objectRef"),
        ({"notificationEventType": 2, **PRIOR, **POST}, "forbids postObjectState"),
        ({"notificationEventType": 3, **PRIOR}, "notificationEventType"),
    ],
)
def test_model_rejects_wrong_field_sets(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=error):
        InventoryChangeNotification.model_validate({"notificationId": NOTIFICATION_ID, **fields})


def test_model_rejects_unknown_fields_and_non_uuid_ids() -> None:
    base = {"notificationEventType": 2, "priorObjectState": STATE}
    with pytest.raises(pydantic.ValidationError):
        InventoryChangeNotification.model_validate({"notificationId": "nope", **base})
    with pytest.raises(pydantic.ValidationError):
        InventoryChangeNotification.model_validate(
            {"notificationId": NOTIFICATION_ID, "updateTime": "t", **base}
        )


# -- objectRef ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "url"),
    [
        (created(pool()), f"{INV}/resourcePools/p-1"),
        (modified(RESOURCE, RESOURCE), f"{INV}/resourcePools/p-1/resources/r-1"),
        (created(RESOURCE_TYPE), f"{INV}/resourceTypes/t-1"),
        (created(MANAGER), f"{INV}/deploymentManagers/dm-1"),
        (created(LOCATION), f"{INV}/locations/ES-MAD-1"),
        (created(SITE), f"{INV}/oCloudSites/site-1"),
    ],
)
def test_object_ref_urls(event: InventoryEvent, url: str) -> None:
    assert object_ref(API_ROOT, event) == url
    assert object_ref(API_ROOT + "/", event) == url


def test_object_ref_of_the_cloud_is_the_version_root() -> None:
    event = InventoryEvent(ObjectKind.CLOUD, EventType.MODIFY, CLOUD, CLOUD_INFO, CLOUD_INFO)  # type: ignore[arg-type]
    assert object_ref(API_ROOT, event) == INV


@pytest.mark.parametrize("event", [deleted(pool()), deleted(RESOURCE), deleted(SITE)])
def test_object_ref_absent_on_delete(event: InventoryEvent) -> None:
    assert object_ref(API_ROOT, event) is None


def test_object_ref_keeps_a_path_prefix_and_encodes_ids() -> None:
    odd = RESOURCE.model_copy(update={"resource_id": "r 1/x", "resource_pool_id": "pool?1"})
    event = InventoryEvent(ObjectKind.RESOURCE, EventType.CREATE, "r 1/x", post=odd)
    assert (
        object_ref("https://gw.example/o2/", event)
        == "https://gw.example/o2/o2ims-infrastructureInventory/v1/resourcePools/pool%3F1/resources/r%201%2Fx"
    )


def test_resource_ref_uses_the_post_state_pool() -> None:
    moved = RESOURCE.model_copy(update={"resource_pool_id": "p-2"})
    event = modified(RESOURCE, moved)
    assert object_ref(API_ROOT, event) == f"{INV}/resourcePools/p-2/resources/r-1"
