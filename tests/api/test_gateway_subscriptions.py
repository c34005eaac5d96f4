"""Subscriptions on netweave's own surface, ``/o2ims/v1/subscriptions``, over real HTTP.

The gateway serves the simulated O-Cloud on loopback (pages of two, so listings page);
callbacks are real webhook receivers on loopback.  A second, secured gateway (bearer
tokens, a tenancy file) checks the tenant scoping.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import yaml
from tests.credentials import AUDIENCE, ISSUER, TokenIssuer
from tests.servers import RunningGateway, serve_gateway
from tests.waiting import eventually
from tests.webhooks import Receiver, Reply, running_receiver

SUBS = "/o2ims/v1/subscriptions"
STANDARD = "/o2ims-infrastructureInventory/v1/subscriptions"
RESOURCES = "(eq,objectType,ResourceInfo)"


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
        max_page_size=2,
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


def outbox_depth(gateway: RunningGateway) -> int:
    """Deliveries pending or in flight in the gateway's store."""
    loop: asyncio.AbstractEventLoop = gateway.app.state.loop
    depth: int = asyncio.run_coroutine_threadsafe(gateway.app.state.store.depth(), loop).result(
        timeout=10
    )
    return depth


def subscribe(client: httpx.Client, callback: str, **extra: Any) -> dict[str, Any]:
    response = client.post(SUBS, json={"callback": callback, **extra})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def listing(client: httpx.Client, **params: str) -> list[dict[str, Any]]:
    """Every subscription listed, following ``nextMarker`` page by page."""
    items: list[dict[str, Any]] = []
    query: dict[str, str] = dict(params)
    for _ in range(1000):
        response = client.get(SUBS, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "nextMarker"}
        assert len(page["items"]) <= 2
        items.extend(page["items"])
        if page["nextMarker"] is None:
            return items
        query = {**params, "nextpage_opaque_marker": page["nextMarker"]}
    raise AssertionError("the listing never ended")


def stored(client: httpx.Client, subscription_id: str) -> dict[str, Any]:
    response = client.get(f"{SUBS}/{subscription_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def everything(client: httpx.Client) -> list[dict[str, Any]]:
    return sorted(listing(client), key=lambda item: item["subscriptionId"])


# -- create, list, get, delete ---------------------------------------------------------------


def test_create_list_get_delete(client: httpx.Client, receiver: Receiver) -> None:
    callback = receiver.script(f"/crud/{uuid.uuid4()}")
    consumer = str(uuid.uuid4())
    response = client.post(
        SUBS, json={"callback": callback, "consumerSubscriptionId": consumer, "filter": RESOURCES}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    subscription_id = created["subscriptionId"]
    assert created == {
        "subscriptionId": subscription_id,
        "consumerSubscriptionId": consumer,
        "filter": RESOURCES,
        "callback": callback,
    }
    assert urlsplit(response.headers["location"]).path == f"{SUBS}/{subscription_id}"
    assert client.get(response.headers["location"]).json() == created
    assert created in listing(client)
    assert stored(client, subscription_id) == created
    # one subscription, two surfaces
    assert client.get(f"{STANDARD}/{subscription_id}").json() == created
    assert listing(client, filter=f"(eq,callback,'{callback}')") == [created]
    fields = client.get(f"{SUBS}/{subscription_id}", params={"fields": "callback"})
    assert fields.json() == {"callback": callback}
    deleted = client.delete(f"{SUBS}/{subscription_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(client.get(f"{SUBS}/{subscription_id}"), 404)
    assert_problem(client.delete(f"{SUBS}/{subscription_id}"), 404)
    assert created not in listing(client)


def test_listing_pages_through_every_subscription(client: httpx.Client, receiver: Receiver) -> None:
    made = [subscribe(client, receiver.script(f"/page/{uuid.uuid4()}")) for _ in range(5)]
    listed = listing(client)
    assert len(listed) == len({item["subscriptionId"] for item in listed})
    for item in made:
        assert item in listed
    first = client.get(SUBS).json()
    assert len(first["items"]) == 2 and first["nextMarker"]
    for item in made:
        assert client.delete(f"{SUBS}/{item['subscriptionId']}").status_code == 204


def test_object_filters_are_stored_and_shown_as_sol013(
    client: httpx.Client, receiver: Receiver
) -> None:
    callback = receiver.script(f"/object/{uuid.uuid4()}")
    created = subscribe(
        client,
        callback,
        filter={
            "objectType": ["ResourcePoolInfo", "ResourceInfo"],
            "extensions/zone": "edge 1",
            "name": "o'neil,1",
        },
    )
    text = (
        "(in,objectType,ResourcePoolInfo,ResourceInfo);"
        "(eq,extensions/zone,'edge 1');(eq,name,'o''neil,1')"
    )
    assert created["filter"] == text
    assert stored(client, created["subscriptionId"])["filter"] == text
    assert client.get(f"{STANDARD}/{created['subscriptionId']}").json()["filter"] == text
    # the same filter as text is the same subscription: a duplicate
    duplicate = client.post(SUBS, json={"callback": callback, "filter": text})
    assert "already exists" in assert_problem(duplicate, 400)["detail"]
    client.delete(f"{SUBS}/{created['subscriptionId']}")


BAD_BODIES: list[tuple[Any, str]] = [
    ({}, "callback"),
    ({"callback": 42}, "callback"),
    ({"callback": "CALLBACK", "unexpected": 1}, "unexpected"),
    ({"callback": "CALLBACK", "filter": "(eq,nosuch,1)"}, "nosuch"),
    ({"callback": "CALLBACK", "filter": "(eq,objectType"}, "position"),
    ({"callback": "CALLBACK", "filter": "(eq,objectType,NoSuchInfo)"}, "NoSuchInfo"),
    ({"callback": "CALLBACK", "filter": {"nosuch": "x"}}, "nosuch"),
    ({"callback": "CALLBACK", "filter": {"resourcePoolId": None}}, "'resourcePoolId'"),
    ({"callback": "CALLBACK", "filter": {"resourcePoolId": {"eq": "x"}}}, "'resourcePoolId'"),
    ({"callback": "CALLBACK", "filter": {"resourcePoolId": []}}, "'resourcePoolId'"),
    ({"callback": "CALLBACK", "filter": {"extensions//zone": "a"}}, "'extensions//zone'"),
    ({"callback": "CALLBACK", "filter": {"name,x": "a"}}, "'name,x'"),
    ({"callback": "CALLBACK", "filter": {}}, "at least one attribute"),
    ({"callback": "CALLBACK", "filter": 42}, "filter"),
    ({"callback": "CALLBACK", "filter": {"name": "x" * 5000}}, "at most 4096"),
    ({"callback": "CALLBACK", "consumerSubscriptionId": "not-a-uuid"}, "UUID"),
    ({"callback": "ftp://127.0.0.1/x"}, "absolute"),
    ({"callback": "http://127.0.0.1:9/nothing-listens-here"}, "not reachable"),
]


def _body(receiver: Receiver, body: Any) -> Any:
    if isinstance(body, dict) and body.get("callback") == "CALLBACK":
        return {**body, "callback": receiver.script(f"/bad/{uuid.uuid4()}")}
    return body


@pytest.mark.parametrize(("body", "fragment"), BAD_BODIES)
def test_invalid_creations_are_400_and_store_nothing(
    client: httpx.Client, receiver: Receiver, body: Any, fragment: str
) -> None:
    before = everything(client)
    problem = assert_problem(client.post(SUBS, json=_body(receiver, body)), 400)
    assert fragment in problem["detail"]
    assert everything(client) == before


def test_bad_filter_objects_name_the_key(client: httpx.Client, receiver: Receiver) -> None:
    body = {"callback": receiver.script("/key"), "filter": {"ok": "1", "bad key": "x"}}
    problem = assert_problem(client.post(SUBS, json=body), 400)
    assert problem["additionalAttributes"] == {"parameter": "filter", "key": "bad key"}


def test_malformed_json_is_400(client: httpx.Client) -> None:
    before = everything(client)
    for content in (b"{not json", b"[1,2]", b'"callback"'):
        response = client.post(SUBS, content=content, headers={"content-type": "application/json"})
        assert_problem(response, 400)
    assert everything(client) == before


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", SUBS, "GET, POST"),
        ("PATCH", SUBS, "GET, POST"),
        ("DELETE", SUBS, "GET, POST"),
        ("POST", f"{SUBS}/{uuid.uuid4()}", "DELETE, GET, PUT"),
        ("PATCH", f"{SUBS}/{uuid.uuid4()}", "DELETE, GET, PUT"),
    ],
)
def test_undefined_methods_are_405(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path, json={"callback": "http://x"})
    assert_problem(response, 405)
    assert response.headers["allow"] == allow


# -- PUT -------------------------------------------------------------------------------------


def test_put_replaces_callback_filter_and_consumer_id(
    client: httpx.Client, receiver: Receiver
) -> None:
    created = subscribe(
        client,
        receiver.script(f"/before/{uuid.uuid4()}"),
        consumerSubscriptionId=str(uuid.uuid4()),
        filter=RESOURCES,
    )
    subscription_id = created["subscriptionId"]
    callback = receiver.script(f"/after/{uuid.uuid4()}")
    consumer = str(uuid.uuid4())
    response = client.put(
        f"{SUBS}/{subscription_id}",
        json={
            "callback": callback,
            "consumerSubscriptionId": consumer,
            "filter": {"objectType": "ResourcePoolInfo", "resourcePoolId": "abc"},
            "subscriptionId": subscription_id,  # read-only, and the path's: accepted
        },
    )
    assert response.status_code == 200, response.text
    replaced = {
        "subscriptionId": subscription_id,
        "consumerSubscriptionId": consumer,
        "filter": "(eq,objectType,ResourcePoolInfo);(eq,resourcePoolId,abc)",
        "callback": callback,
    }
    assert response.json() == replaced
    assert stored(client, subscription_id) == replaced
    assert client.get(f"{STANDARD}/{subscription_id}").json() == replaced
    assert replaced in listing(client)
    # what a PUT leaves out is cleared; the same callback and filter as before is no duplicate
    cleared = client.put(f"{SUBS}/{subscription_id}", json={"callback": callback})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {"subscriptionId": subscription_id, "callback": callback}
    again = client.put(f"{SUBS}/{subscription_id}", json={"callback": callback})
    assert again.status_code == 200
    assert stored(client, subscription_id) == {
        "subscriptionId": subscription_id,
        "callback": callback,
    }
    # the old callback and filter are free again
    reused = subscribe(client, created["callback"], filter=RESOURCES)
    for item in (subscription_id, reused["subscriptionId"]):
        client.delete(f"{SUBS}/{item}")


@pytest.mark.parametrize(("body", "fragment"), BAD_BODIES)
def test_invalid_replacements_are_400_and_change_nothing(
    client: httpx.Client, receiver: Receiver, body: Any, fragment: str
) -> None:
    created = subscribe(client, receiver.script(f"/keep/{uuid.uuid4()}"), filter=RESOURCES)
    path = f"{SUBS}/{created['subscriptionId']}"
    before = everything(client)
    problem = assert_problem(client.put(path, json=_body(receiver, body)), 400)
    assert fragment in problem["detail"]
    assert stored(client, created["subscriptionId"]) == created
    assert everything(client) == before
    client.delete(path)


def test_put_with_malformed_json_or_another_id_is_400(
    client: httpx.Client, receiver: Receiver
) -> None:
    created = subscribe(client, receiver.script(f"/json/{uuid.uuid4()}"))
    path = f"{SUBS}/{created['subscriptionId']}"
    for content in (b"{not json", b"[1,2]", b""):
        response = client.put(path, content=content, headers={"content-type": "application/json"})
        assert_problem(response, 400)
    other = {"callback": receiver.script("/other-id"), "subscriptionId": str(uuid.uuid4())}
    problem = assert_problem(client.put(path, json=other), 400)
    assert "not the one of the path" in problem["detail"]
    assert stored(client, created["subscriptionId"]) == created
    client.delete(path)


def test_put_with_a_callback_the_policy_refuses_is_400(
    client: httpx.Client, receiver: Receiver
) -> None:
    created = subscribe(client, receiver.script(f"/policy/{uuid.uuid4()}"))
    path = f"{SUBS}/{created['subscriptionId']}"
    refusals = [
        (receiver.script(f"/no-204/{uuid.uuid4()}", Reply(404)), "404"),
        (receiver.script(f"/slow/{uuid.uuid4()}", Reply(204, delay=2)), "did not answer"),
        ("http://callback.invalid/x", "resolve"),
        ("http://user:pw@127.0.0.1/x", "credentials"),
    ]
    for callback, fragment in refusals:
        problem = assert_problem(client.put(path, json={"callback": callback}), 400)
        assert fragment in problem["detail"]
    assert stored(client, created["subscriptionId"]) == created
    client.delete(path)


def test_put_to_an_unknown_id_is_404_and_creates_nothing(
    client: httpx.Client, receiver: Receiver
) -> None:
    before = everything(client)
    unknown = str(uuid.uuid4())
    body = {"callback": receiver.script(f"/unknown/{uuid.uuid4()}"), "filter": RESOURCES}
    assert_problem(client.put(f"{SUBS}/{unknown}", json=body), 404)
    assert_problem(client.get(f"{SUBS}/{unknown}"), 404)
    assert everything(client) == before
    # a deleted subscription is unknown too
    created = subscribe(client, body["callback"], filter=RESOURCES)
    client.delete(f"{SUBS}/{created['subscriptionId']}")
    assert_problem(client.put(f"{SUBS}/{created['subscriptionId']}", json=body), 404)
    assert everything(client) == before


def test_put_making_a_duplicate_is_400_and_changes_nothing(
    client: httpx.Client, receiver: Receiver
) -> None:
    callback = receiver.script(f"/dup/{uuid.uuid4()}")
    first = subscribe(client, callback, filter={"objectType": "ResourcePoolInfo"})
    second = subscribe(client, callback, filter=RESOURCES)
    before = everything(client)
    for duplicate in ("(eq,objectType,ResourcePoolInfo)", {"objectType": "ResourcePoolInfo"}):
        response = client.put(
            f"{SUBS}/{second['subscriptionId']}", json={"callback": callback, "filter": duplicate}
        )
        assert "already exists" in assert_problem(response, 400)["detail"]
    assert stored(client, first["subscriptionId"]) == first
    assert stored(client, second["subscriptionId"]) == second
    assert everything(client) == before
    for created in (first, second):
        client.delete(f"{SUBS}/{created['subscriptionId']}")


# -- notifications ---------------------------------------------------------------------------


def test_after_a_put_notifications_go_to_the_new_callback_with_the_new_filter(
    client: httpx.Client, receiver: Receiver, gateway: RunningGateway
) -> None:
    old_path, new_path = f"/old/{uuid.uuid4()}", f"/new/{uuid.uuid4()}"
    created = subscribe(client, receiver.script(old_path), filter=RESOURCES)
    churn(gateway, steps=3)
    eventually(lambda: receiver.received(old_path))
    eventually(lambda: outbox_depth(gateway) == 0)  # everything queued has been delivered
    delivered_before = len(receiver.received(old_path))
    for delivery in receiver.received(old_path):
        state = orjson.loads(delivery.body)
        assert "resourceId" in (state.get("postObjectState") or state["priorObjectState"])

    consumer = str(uuid.uuid4())
    response = client.put(
        f"{SUBS}/{created['subscriptionId']}",
        json={
            "callback": receiver.script(new_path),
            "consumerSubscriptionId": consumer,
            "filter": {"objectType": "DeploymentManagerInfo"},
        },
    )
    assert response.status_code == 200, response.text
    churn(gateway, steps=12)  # node additions and removals change the DM's capacity
    received = eventually(lambda: receiver.received(new_path))
    eventually(lambda: outbox_depth(gateway) == 0)
    for delivery in receiver.received(new_path):
        payload = orjson.loads(delivery.body)
        assert payload["consumerSubscriptionId"] == consumer
        state = payload.get("postObjectState") or payload["priorObjectState"]
        assert "deploymentManagerId" in state
    assert received
    assert len(receiver.received(old_path)) == delivered_before
    client.delete(f"{SUBS}/{created['subscriptionId']}")


# -- tenants ---------------------------------------------------------------------------------

TENANCY = {
    "tenants": [{"tenantId": "smo-a", "name": "SMO A"}, {"tenantId": "smo-b", "name": "SMO B"}],
    "users": [
        {"tenantId": "smo-a", "subject": "smo-a-client"},
        {"tenantId": "smo-a", "subject": "smo-a-reader"},
        {"tenantId": "smo-b", "subject": "smo-b-client"},
    ],
    "roleBindings": [
        {"subject": "smo-a-client", "role": "tenant-admin", "tenantId": "smo-a"},
        {"subject": "smo-a-reader", "role": "tenant-viewer", "tenantId": "smo-a"},
        {"subject": "smo-b-client", "role": "tenant-admin", "tenantId": "smo-b"},
        {"subject": "ops", "role": "platform-admin"},
    ],
}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> TokenIssuer:
    return TokenIssuer(tmp_path_factory.mktemp("idp") / "signing.pem")


@pytest.fixture(scope="module")
def secured(
    issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    tenancy = tmp_path_factory.mktemp("tenancy") / "tenancy.yaml"
    tenancy.write_text(yaml.safe_dump(TENANCY))
    with (
        serve_gateway(
            access_log=False,
            token_issuer=ISSUER,
            token_audience=AUDIENCE,
            token_key_files=str(issuer.key_file),
            tenancy_file=tenancy,
            callback_allowlist="127.0.0.1",
            callback_verify_timeout=0.5,
        ) as running,
        httpx.Client(base_url=running.base_url, timeout=10, trust_env=False) as http,
    ):
        yield http


def test_tenants_see_and_replace_only_their_own_subscriptions(
    secured: httpx.Client, issuer: TokenIssuer, receiver: Receiver
) -> None:
    a, b = issuer.headers("smo-a-client"), issuer.headers("smo-b-client")
    ops = issuer.headers("ops")
    created = secured.post(SUBS, json={"callback": receiver.script("/tenant-a")}, headers=a)
    assert created.status_code == 201, created.text
    subscription = created.json()
    path = f"{SUBS}/{subscription['subscriptionId']}"
    takeover = {"callback": receiver.script("/tenant-b"), "filter": RESOURCES}

    def ids(headers: dict[str, str]) -> set[str]:
        response = secured.get(SUBS, headers=headers)
        assert response.status_code == 200, response.text
        return {item["subscriptionId"] for item in response.json()["items"]}

    assert subscription["subscriptionId"] not in ids(b)
    assert_problem(secured.get(path, headers=b), 404)
    assert_problem(secured.put(path, json=takeover, headers=b), 404)
    assert_problem(secured.delete(path, headers=b), 404)
    assert secured.get(path, headers=a).json() == subscription
    # a viewer of the owning tenant may read it, not replace it
    reader = issuer.headers("smo-a-reader")
    assert secured.get(path, headers=reader).json() == subscription
    assert_problem(secured.put(path, json=takeover, headers=reader), 403)
    assert secured.get(path, headers=a).json() == subscription
    # the same callback and filter in another tenant is no duplicate
    theirs = secured.post(
        SUBS, json={"callback": receiver.script("/tenant-a"), "filter": RESOURCES}, headers=b
    )
    assert theirs.status_code == 201, theirs.text
    same = {"callback": receiver.script("/tenant-a"), "filter": RESOURCES}
    mine = secured.put(path, json=same, headers=a)
    assert mine.status_code == 200, mine.text
    assert subscription["subscriptionId"] in ids(ops)
    assert secured.delete(path, headers=b).status_code == 404
    assert secured.delete(path, headers=a).status_code == 204
    theirs_path = f"{SUBS}/{theirs.json()['subscriptionId']}"
    assert secured.delete(theirs_path, headers=b).status_code == 204
