"""Inventory subscriptions over real HTTP, with real webhook receivers on loopback."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.api.spec_shapes import assert_shape
from tests.servers import RunningGateway, serve_gateway
from tests.waiting import eventually
from tests.webhooks import Receiver, Reply, running_receiver

from netweave.notifications import signing

SUBS = "/o2ims-infrastructureInventory/v1/subscriptions"
V1 = "/o2ims-infrastructureInventory/v1"
SECRET = "test-signing-key"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with serve_gateway(
        access_log=False,
        callback_allowlist="127.0.0.1",
        callback_verify_timeout=0.5,
        notification_secret=SECRET,
    ) as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=10, trust_env=False) as http:
        yield http


def churn(gateway: RunningGateway, steps: int = 1) -> None:
    """Apply simulated O-Cloud changes now, in the gateway's own event loop."""
    adapter = gateway.app.state.view._adapter
    loop: asyncio.AbstractEventLoop = gateway.app.state.loop

    async def step() -> None:
        for _ in range(steps):
            adapter.apply_churn_step()

    asyncio.run_coroutine_threadsafe(step(), loop).result(timeout=10)


def subscribe(client: httpx.Client, callback: str, **extra: Any) -> dict:
    response = client.post(SUBS, json={"callback": callback, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def listed_ids(client: httpx.Client) -> set[str]:
    return {item["subscriptionId"] for item in client.get(SUBS).json()}


# The API ----------------------------------------------------------------------------


def test_create_list_get_delete(client: httpx.Client, receiver: Receiver) -> None:
    callback = receiver.script(f"/crud/{uuid.uuid4()}")
    consumer = str(uuid.uuid4())
    created = subscribe(
        client, callback, consumerSubscriptionId=consumer, filter="(eq,objectType,ResourceInfo)"
    )
    assert set(created) == {"subscriptionId", "consumerSubscriptionId", "filter", "callback"}
    uuid.UUID(created["subscriptionId"])
    assert created["consumerSubscriptionId"] == consumer
    assert created["callback"] == callback
    listing = client.get(SUBS)
    assert listing.status_code == 200
    assert isinstance(listing.json(), list)
    assert created in listing.json()
    assert int(listing.headers["x-total-count"]) == len(listing.json())
    one = client.get(f"{SUBS}/{created['subscriptionId']}")
    assert one.status_code == 200 and one.json() == created
    assert client.get(SUBS, params={"filter": f"(eq,callback,'{callback}')"}).json() == [created]
    fields = client.get(f"{SUBS}/{created['subscriptionId']}", params={"fields": "callback"})
    assert fields.json() == {"callback": callback}
    deleted = client.delete(f"{SUBS}/{created['subscriptionId']}")
    assert deleted.status_code == 200 and deleted.content == b""
    assert_problem(client.get(f"{SUBS}/{created['subscriptionId']}"), 404)
    assert_problem(client.delete(f"{SUBS}/{created['subscriptionId']}"), 404)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "callback"),
        ({"callback": "not a url"}, "absolute"),
        ({"callback": "ftp://127.0.0.1/x"}, "absolute"),
        ({"callback": "http:///nohost"}, "absolute"),
        ({"callback": "http://user:pw@127.0.0.1/x"}, "credentials"),
        ({"callback": "http://127.0.0.1:99999/x"}, "valid URL"),
        ({"callback": "CALLBACK", "filter": "(eq,nosuch,1)"}, "nosuch"),
        ({"callback": "CALLBACK", "filter": "(eq,objectType,NoSuchInfo)"}, "NoSuchInfo"),
        ({"callback": "CALLBACK", "consumerSubscriptionId": "not-a-uuid"}, "UUID"),
        ({"callback": "CALLBACK", "unexpected": 1}, "unexpected"),
        ({"callback": 42}, "callback"),
    ],
)
def test_invalid_subscriptions_are_400_and_store_nothing(
    client: httpx.Client, receiver: Receiver, body: dict, fragment: str
) -> None:
    if body.get("callback") == "CALLBACK":
        body = {**body, "callback": receiver.script(f"/bad/{uuid.uuid4()}")}
    before = listed_ids(client)
    problem = assert_problem(client.post(SUBS, json=body), 400)
    assert fragment in problem["detail"]
    assert listed_ids(client) == before


def test_malformed_json_and_wrong_content_type(client: httpx.Client) -> None:
    before = listed_ids(client)
    assert_problem(
        client.post(SUBS, content=b"{not json", headers={"content-type": "application/json"}),
        400,
    )
    assert_problem(
        client.post(SUBS, content=b"callback=x", headers={"content-type": "text/plain"}), 415
    )
    assert_problem(
        client.post(SUBS, content=b"[1,2]", headers={"content-type": "application/json"}), 400
    )
    assert listed_ids(client) == before


def test_callback_checks(client: httpx.Client, receiver: Receiver) -> None:
    not_204 = receiver.script(f"/verify/{uuid.uuid4()}", Reply(404))
    assert "404" in assert_problem(client.post(SUBS, json={"callback": not_204}), 400)["detail"]
    slow = receiver.script(f"/verify/{uuid.uuid4()}", Reply(204, delay=2))
    assert (
        "did not answer"
        in assert_problem(client.post(SUBS, json={"callback": slow}), 400)["detail"]
    )
    nobody = "http://127.0.0.1:9/nothing-listens-here"
    assert (
        "not reachable"
        in assert_problem(client.post(SUBS, json={"callback": nobody}), 400)["detail"]
    )
    unresolvable = "http://callback.invalid/x"
    assert (
        "resolve"
        in assert_problem(client.post(SUBS, json={"callback": unresolvable}), 400)["detail"]
    )


@pytest.mark.parametrize(
    "callback",
    [
        "http://127.0.0.1/cb",
        "http://localhost/cb",
        "http://[::1]/cb",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/cb",
        "http://0.0.0.0/cb",
    ],
)
def test_internal_callbacks_are_refused_without_allowlist(callback: str) -> None:
    with (
        serve_gateway(access_log=False) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False) as client,
    ):
        problem = assert_problem(client.post(SUBS, json={"callback": callback}), 400)
        assert "internal address" in problem["detail"]
        assert client.get(SUBS).json() == []


def test_duplicate_callback_and_filter_is_400(client: httpx.Client, receiver: Receiver) -> None:
    callback = receiver.script(f"/dup/{uuid.uuid4()}")
    first = subscribe(client, callback, filter="(eq,objectType,ResourcePoolInfo)")
    problem = assert_problem(
        client.post(
            SUBS, json={"callback": callback, "filter": "(eq,objectType,ResourcePoolInfo)"}
        ),
        400,
    )
    assert "already exists" in problem["detail"]
    other = subscribe(client, callback, filter="(eq,objectType,ResourceInfo)")  # another filter
    for created in (first, other):
        client.delete(f"{SUBS}/{created['subscriptionId']}")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", SUBS, "GET, POST"),
        ("PATCH", SUBS, "GET, POST"),
        ("DELETE", SUBS, "GET, POST"),
        ("POST", f"{SUBS}/{uuid.uuid4()}", "DELETE, GET"),
        ("PUT", f"{SUBS}/{uuid.uuid4()}", "DELETE, GET"),
    ],
)
def test_undefined_methods_are_405(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path, json={"callback": "http://x"})
    assert_problem(response, 405)
    assert response.headers["allow"] == allow


# Notifications ----------------------------------------------------------------------


def test_notifications_follow_the_spec_and_are_signed(
    client: httpx.Client, receiver: Receiver, gateway: RunningGateway
) -> None:
    path = f"/notify/{uuid.uuid4()}"
    callback = receiver.script(path)
    consumer = str(uuid.uuid4())
    created = subscribe(
        client, callback, consumerSubscriptionId=consumer, filter="(eq,objectType,ResourceInfo)"
    )
    churn(gateway, steps=6)
    received = eventually(lambda: receiver.received(path))
    seen_types = set()
    for delivery in eventually(
        lambda: len(receiver.received(path)) >= 3 and receiver.received(path)
    ):
        assert delivery.headers["content-type"] == "application/json"
        payload = orjson.loads(delivery.body)
        kind = payload["notificationEventType"]
        seen_types.add(kind)
        expected = {"notificationId", "consumerSubscriptionId", "notificationEventType"}
        expected |= {
            0: {"objectRef", "postObjectState"},
            1: {"objectRef", "priorObjectState", "postObjectState"},
            2: {"priorObjectState"},
        }[kind]
        assert set(payload) == expected
        uuid.UUID(payload["notificationId"])
        assert payload["consumerSubscriptionId"] == consumer
        state = payload.get("postObjectState") or payload["priorObjectState"]
        assert_shape("Resource", state)
        if "objectRef" in payload:
            ref = payload["objectRef"]
            assert ref.startswith(gateway.base_url + V1 + "/resourcePools/")
            current = httpx.get(ref, trust_env=False)  # later churn may have changed or removed it
            assert current.status_code in (200, 404)
            if current.status_code == 200:
                assert current.json()["resourceId"] == payload["postObjectState"]["resourceId"]
        assert signing.verify(
            SECRET.encode(),
            timestamp=delivery.headers["x-netweave-timestamp"],
            signature=delivery.headers["x-netweave-signature"],
            body=delivery.body,
            now=time.time(),
        )
    assert received
    assert seen_types
    client.delete(f"{SUBS}/{created['subscriptionId']}")


def test_filters_select_what_is_notified(
    client: httpx.Client, receiver: Receiver, gateway: RunningGateway
) -> None:
    pools_path, dm_path = f"/pools/{uuid.uuid4()}", f"/dm/{uuid.uuid4()}"
    only_pools = subscribe(
        client, receiver.script(pools_path), filter="(eq,objectType,ResourcePoolInfo)"
    )
    only_dm = subscribe(
        client, receiver.script(dm_path), filter="(eq,objectType,DeploymentManagerInfo)"
    )
    churn(gateway, steps=12)  # node additions and removals change the DM's capacity
    eventually(lambda: receiver.received(dm_path))
    time.sleep(0.3)
    for delivery in receiver.received(dm_path):
        state = orjson.loads(delivery.body)
        assert "deploymentManagerId" in (state.get("postObjectState") or state["priorObjectState"])
    assert receiver.received(pools_path) == []  # the simulated churn never changes pools
    for created in (only_pools, only_dm):
        client.delete(f"{SUBS}/{created['subscriptionId']}")


def test_dead_letters_are_listed_and_replayed(
    client: httpx.Client, receiver: Receiver, gateway: RunningGateway
) -> None:
    path = f"/dead/{uuid.uuid4()}"
    callback = receiver.script(path, Reply(204), then=Reply(400))  # GET check ok, POSTs refused
    created = subscribe(client, callback, filter="(eq,objectType,ResourceInfo)")
    churn(gateway, steps=3)

    def dead_for_us() -> list[dict]:
        listing = client.get("/o2ims/v1/deliveries/dead")
        assert listing.status_code == 200
        return [
            item
            for item in listing.json()["items"]
            if item["subscriptionId"] == created["subscriptionId"]
        ]

    dead = eventually(dead_for_us)
    assert "HTTP 400" in dead[0]["reason"]
    refused = len(receiver.received(path))
    receiver.script(path)  # the subscriber is fixed: 204 from now on
    replay = client.post(f"/o2ims/v1/deliveries/dead/{dead[0]['deadLetterId']}/replay")
    assert replay.status_code == 202
    eventually(lambda: len(receiver.received(path)) > refused)
    assert receiver.received(path)[-1].status == 204
    assert_problem(client.post("/o2ims/v1/deliveries/dead/nope/replay"), 404)
    client.delete(f"{SUBS}/{created['subscriptionId']}")


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("GET", "/o2ims/v1/deliveries/dead", {"limit": "abc"}, 400),
        ("GET", "/o2ims/v1/deliveries/dead", {"limit": "0"}, 400),
        ("GET", "/o2ims/v1/deliveries/dead", {"limit": "100000"}, 400),
        ("GET", SUBS, {"filter": "(eq,nosuch,1)"}, 400),
        ("GET", SUBS, {"fields": "nosuch"}, 400),
        ("GET", SUBS, {"nextpage_opaque_marker": "forged"}, 400),
        ("GET", f"{SUBS}/{uuid.uuid4()}", {"fields": "nosuch"}, 404),
        ("DELETE", "/o2ims/v1/deliveries/dead", {}, 405),
        ("GET", "/o2ims/v1/deliveries/dead/x/replay", {}, 405),
    ],
)
def test_bad_queries_on_subscription_and_delivery_routes(
    client: httpx.Client, method: str, path: str, params: dict, status: int
) -> None:
    before = listed_ids(client)
    assert_problem(client.request(method, path, params=params), status)
    assert listed_ids(client) == before
