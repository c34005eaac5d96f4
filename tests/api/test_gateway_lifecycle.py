"""The gateway API's writes against the simulated O-Cloud: pools, resources, operations, batch.

A real gateway (uvicorn on loopback) and a real webhook receiver: every write is checked
through HTTP, and its notification through the receiver.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.servers import RunningGateway, serve_gateway
from tests.waiting import eventually
from tests.webhooks import Receiver, running_receiver

V1 = "/o2ims/v1"
POOLS = f"{V1}/resourcePools"
HARDWARE = "hpe-proliant-dl360-gen11"


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
        max_page_size=3,
    ) as running:
        yield running


@pytest.fixture
def http(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=20, trust_env=False) as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def create(http: httpx.Client, name: str, **extensions: Any) -> dict[str, Any]:
    body = {"name": name, "description": f"{name} pool", "extensions": extensions}
    response = http.post(POOLS, json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{POOLS}/{response.json()['resourcePoolId']}"
    created: dict[str, Any] = response.json()
    return created


def resources_of(http: httpx.Client, pool_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, str] = {}
    while True:
        page = http.get(f"{POOLS}/{pool_id}/resources", params=params)
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        if page.json()["nextMarker"] is None:
            return items
        params = {"nextpage_opaque_marker": page.json()["nextMarker"]}


def finished(http: httpx.Client, location: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        operation: dict[str, Any] = http.get(location).json()
        return operation if operation["status"] != "running" else None

    return eventually(done, timeout=20)


# --------------------------------------------------------------------------- reads


def test_lists_use_the_items_envelope_and_page(http: httpx.Client) -> None:
    first = http.get(POOLS)
    assert first.status_code == 200
    page = first.json()
    assert set(page) == {"items", "nextMarker"} and len(page["items"]) == 3
    assert int(first.headers["x-total-count"]) >= 7
    seen = [p["resourcePoolId"] for p in page["items"]]
    while page["nextMarker"] is not None:
        page = http.get(POOLS, params={"nextpage_opaque_marker": page["nextMarker"]}).json()
        seen += [p["resourcePoolId"] for p in page["items"]]
    assert len(seen) == len(set(seen)) == int(first.headers["x-total-count"])
    standard = http.get("/o2ims-infrastructureInventory/v1/resourcePools").json()
    assert standard == first.json()["items"]  # the same objects, another envelope
    for pool in standard:
        assert {"resourcePoolId", "name", "description", "location", "oCloudId"} <= set(pool)
    some = http.get(f"{V1}/resources").json()["items"][0]
    assert http.get(f"{V1}/resources/{some['resourceId']}").json() == some
    assert http.get(f"{V1}/resourceTypes").json()["items"]
    assert http.get(f"{V1}/deploymentManagers").json()["items"]


def test_wrong_methods_are_405_with_allow(http: httpx.Client) -> None:
    response = http.put(f"{V1}/resourceTypes")
    problem(response, 405)
    assert response.headers["allow"] == "GET"
    assert problem(http.patch(POOLS, json={}), 405)
    # the standard surface stays read-only
    problem(http.post("/o2ims-infrastructureInventory/v1/resourcePools", json={}), 405)


# --------------------------------------------------------------------------- pools


def test_pool_lifecycle(http: httpx.Client) -> None:
    pool = create(http, "edge-lab", instanceType=HARDWARE, replicas=2, labels={"site": "lab"})
    pool_id = pool["resourcePoolId"]
    assert pool["name"] == "edge-lab" and pool["extensions"]["instanceType"] == HARDWARE
    assert len(resources_of(http, pool_id)) == 2
    assert http.get(f"{POOLS}/{pool_id}").json() == pool

    patched = http.patch(
        f"{POOLS}/{pool_id}", json={"description": "resized", "extensions": {"replicas": 4}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "resized"
    eventually(lambda: len(resources_of(http, pool_id)) == 4)

    replaced = http.put(
        f"{POOLS}/{pool_id}",
        json={"name": "edge-lab", "description": "put", "extensions": {"labels": {"tier": "gold"}}},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["extensions"]["labels"] == {"tier": "gold"}
    problem(http.put(f"{POOLS}/{pool_id}", json={"name": "renamed", "description": "x"}), 400)

    assert "resources" in problem(http.delete(f"{POOLS}/{pool_id}"), 409)["detail"]
    assert http.get(f"{POOLS}/{pool_id}").status_code == 200  # still there
    assert http.delete(f"{POOLS}/{pool_id}", params={"force": "true"}).status_code == 204
    eventually(lambda: http.get(f"{POOLS}/{pool_id}").status_code == 404)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "Bad_Name"}, 400),
        ({"name": "ok-name", "unknown": 1}, 400),
        ({"name": "ok-name", "extensions": {"replicas": -1}}, 400),
        ({"name": "ok-name", "extensions": {"replicas": "two"}}, 400),
        ({"name": "ok-name", "extensions": {"instanceType": "no-such-shape"}}, 400),
        ({"name": "ok-name", "extensions": {"labels": {"bad key!": "x"}}}, 400),
        ({"name": "ok-name", "extensions": {"taints": [{"key": "k", "effect": "Sometimes"}]}}, 400),
        ({"name": "ok-name", "oCloudId": "00000000-0000-4000-8000-000000000000"}, 400),
        ({"name": "ok-name", "extensions": {"tenant": "no-such-tenant"}}, 400),
        ({"description": "no name"}, 400),
        ({"name": "mad-core"}, 409),
    ],
)
def test_bad_pool_requests_change_nothing(
    http: httpx.Client, body: dict[str, Any], status: int
) -> None:
    before = http.get("/o2ims-infrastructureInventory/v1/resourcePools").json()
    problem(http.post(POOLS, json=body), status)
    assert http.get("/o2ims-infrastructureInventory/v1/resourcePools").json() == before


def test_bad_pool_updates_and_unknown_pools(http: httpx.Client) -> None:
    unknown = "00000000-0000-4000-8000-00000000dead"
    problem(http.patch(f"{POOLS}/{unknown}", json={"description": "x"}), 404)
    problem(http.delete(f"{POOLS}/{unknown}"), 404)
    pool_id = http.get(POOLS, params={"filter": "(eq,name,mad-core)"}).json()["items"][0][
        "resourcePoolId"
    ]
    before = http.get(f"{POOLS}/{pool_id}").json()
    problem(http.patch(f"{POOLS}/{pool_id}", json={"name": "x"}), 400)
    problem(http.patch(f"{POOLS}/{pool_id}", json={"extensions": {"replicas": 10_000}}), 400)
    problem(
        http.patch(
            f"{POOLS}/{pool_id}", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
    )
    assert http.get(f"{POOLS}/{pool_id}").json() == before


# --------------------------------------------------------------------------- resources


def test_resources_are_added_and_retired_through_operations(http: httpx.Client) -> None:
    pool = create(http, "edge-ops", instanceType=HARDWARE, replicas=1)
    pool_id = pool["resourcePoolId"]
    try:
        added = http.post(f"{V1}/resources", json={"resourcePoolId": pool_id})
        assert added.status_code == 202, added.text
        assert added.json()["status"] == "running"
        operation = finished(http, added.headers["location"])
        assert operation["status"] == "succeeded", operation
        new_id = operation["resourceId"]
        assert any("joined" in step["message"] for step in operation["steps"])
        eventually(lambda: http.get(f"{V1}/resources/{new_id}").status_code == 200)

        removed = http.delete(f"{V1}/resources/{new_id}")
        assert removed.status_code == 202, removed.text
        operation = finished(http, removed.headers["location"])
        assert operation["status"] == "succeeded", operation
        assert any("drained" in step["message"] for step in operation["steps"])
        eventually(lambda: http.get(f"{V1}/resources/{new_id}").status_code == 404)
    finally:
        http.delete(f"{POOLS}/{pool_id}", params={"force": "true"})


def test_a_blocked_drain_is_reported_and_changes_nothing(http: httpx.Client) -> None:
    # built-in pools keep a minimum of nodes (the simulated disruption budget)
    pool_id = http.get(POOLS, params={"filter": "(eq,name,dal-storage)"}).json()["items"][0][
        "resourcePoolId"
    ]
    nodes = resources_of(http, pool_id)
    while len(nodes) > 3:  # down to the budget, if churn left more
        http.delete(f"{V1}/resources/{nodes[-1]['resourceId']}")
        nodes = nodes[:-1]
    victim = nodes[0]["resourceId"]
    response = http.delete(f"{V1}/resources/{victim}")
    assert response.status_code == 202
    operation = finished(http, response.headers["location"])
    assert operation["status"] == "failed" and operation["error"]
    assert http.get(f"{V1}/resources/{victim}").status_code == 200


def test_bad_resource_requests(http: httpx.Client) -> None:
    problem(http.post(f"{V1}/resources", json={}), 400)
    problem(http.post(f"{V1}/resources", json={"resourcePoolId": "nope"}), 404)
    problem(http.delete(f"{V1}/resources/nope"), 404)
    problem(http.get(f"{V1}/operations/nope"), 404)


# --------------------------------------------------------------------------- notifications


def test_every_write_is_notified_through_the_watch(http: httpx.Client, receiver: Receiver) -> None:
    callback = receiver.script("/lifecycle")
    sub = http.post(f"{V1}/subscriptions", json={"callback": callback})
    assert sub.status_code == 201, sub.text
    try:
        pool = create(http, "edge-notified", instanceType=HARDWARE, replicas=1)
        pool_id = pool["resourcePoolId"]
        http.patch(f"{POOLS}/{pool_id}", json={"description": "changed"})
        http.delete(f"{POOLS}/{pool_id}", params={"force": "true"})

        def pool_events() -> list[tuple[int, str | None]]:
            events = []
            for received in receiver.received("/lifecycle"):
                body = json.loads(received.body)
                obj = body.get("postObjectState") or body.get("priorObjectState") or {}
                if obj.get("resourcePoolId") == pool_id and "resourceId" not in obj:
                    events.append((body["notificationEventType"], obj.get("description")))
            return events

        events = eventually(
            lambda: (found := pool_events()) and found[-1][0] == 2 and found, timeout=20
        )
        kinds = [kind for kind, _ in events]
        assert kinds[0] == 0 and kinds[-1] == 2 and 1 in kinds
        assert (1, "changed") in events
    finally:
        http.delete(f"{V1}/subscriptions/{sub.json()['subscriptionId']}")


# --------------------------------------------------------------------------- batch


def test_a_batch_answers_207_with_a_result_per_operation(
    http: httpx.Client, receiver: Receiver
) -> None:
    batch = {
        "operations": [
            {
                "op": "create",
                "kind": "resourcePool",
                "body": {"name": "batch-a", "extensions": {"instanceType": HARDWARE}},
            },
            {"op": "create", "kind": "resourcePool", "body": {"name": "mad-core"}},  # duplicate
            {
                "op": "create",
                "kind": "subscription",
                "body": {"callback": receiver.script("/batch")},
            },
            {"op": "delete", "kind": "subscription", "id": "00000000-0000-4000-8000-000000000000"},
        ]
    }
    response = http.post(f"{V1}/batch", json=batch)
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["committed"] is False and result["atomic"] is False
    assert [r["status"] for r in result["results"]] == [201, 409, 201, 404]
    pool_id = result["results"][0]["body"]["resourcePoolId"]
    sub_id = result["results"][2]["body"]["subscriptionId"]
    assert http.get(f"{POOLS}/{pool_id}").status_code == 200
    assert http.get(f"{V1}/subscriptions/{sub_id}").status_code == 200
    http.delete(f"{POOLS}/{pool_id}", params={"force": "true"})
    http.delete(f"{V1}/subscriptions/{sub_id}")


def test_an_atomic_batch_is_undone_at_the_first_failure(
    http: httpx.Client, receiver: Receiver
) -> None:
    mad_core = http.get(POOLS, params={"filter": "(eq,name,mad-core)"}).json()["items"][0]
    batch = {
        "atomic": True,
        "operations": [
            {
                "op": "create",
                "kind": "resourcePool",
                "body": {
                    "name": "atomic-a",
                    "extensions": {"instanceType": HARDWARE, "replicas": 1},
                },
            },
            {
                "op": "update",
                "kind": "resourcePool",
                "id": mad_core["resourcePoolId"],
                "body": {"description": "atomic"},
            },
            {
                "op": "create",
                "kind": "subscription",
                "body": {"callback": receiver.script("/atomic")},
            },
            {"op": "create", "kind": "resourcePool", "body": {"name": "mad-core"}},  # fails
            {"op": "create", "kind": "resourcePool", "body": {"name": "atomic-never"}},
        ],
    }
    response = http.post(f"{V1}/batch", json=batch)
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["committed"] is False
    statuses = [r["status"] for r in result["results"]]
    assert statuses == [201, 200, 201, 409, 424]
    assert [r.get("rolledBack") for r in result["results"][:3]] == [True, True, True]
    names = {p["name"] for p in http.get("/o2ims-infrastructureInventory/v1/resourcePools").json()}
    eventually(
        lambda: (
            "atomic-a"
            not in {
                p["name"]
                for p in http.get("/o2ims-infrastructureInventory/v1/resourcePools").json()
            }
        )
    )
    assert "atomic-never" not in names
    after = http.get(f"{POOLS}/{mad_core['resourcePoolId']}").json()
    assert after["description"] == mad_core["description"]
    sub_id = result["results"][2]["body"]["subscriptionId"]
    assert http.get(f"{V1}/subscriptions/{sub_id}").status_code == 404


def test_an_atomic_batch_refuses_what_cannot_be_undone(http: httpx.Client) -> None:
    batch = {
        "atomic": True,
        "operations": [
            {"op": "create", "kind": "resourcePool", "body": {"name": "never-made"}},
            {"op": "delete", "kind": "resourcePool", "id": "x"},
        ],
    }
    body = problem(http.post(f"{V1}/batch", json=batch), 400)
    assert "operations[1]" in body["detail"]
    assert not http.get(POOLS, params={"filter": "(eq,name,never-made)"}).json()["items"]
    problem(http.post(f"{V1}/batch", json={"operations": []}), 400)
    problem(
        http.post(
            f"{V1}/batch", json={"operations": [{"op": "create", "kind": "resource", "id": "x"}]}
        ),
        400,
    )
    problem(
        http.post(
            f"{V1}/batch",
            json={"operations": [{"op": "update", "kind": "resource", "id": "x", "body": {}}]},
        ),
        400,
    )


def test_an_atomic_batch_restores_the_size_of_a_pool_that_records_none(
    http: httpx.Client,
) -> None:
    mad_core = http.get(POOLS, params={"filter": "(eq,name,mad-core)"}).json()["items"][0]
    pool_id = mad_core["resourcePoolId"]
    size = len(resources_of(http, pool_id))
    batch = {
        "atomic": True,
        "operations": [
            {
                "op": "update",
                "kind": "resourcePool",
                "id": pool_id,
                "body": {"extensions": {"replicas": size + 2}},
            },
            {"op": "create", "kind": "resourcePool", "body": {"name": "mad-core"}},  # fails
        ],
    }
    result = http.post(f"{V1}/batch", json=batch, headers={"X-Request-ID": "batch-7"}).json()
    assert [r["status"] for r in result["results"]] == [200, 409]
    assert result["results"][0]["rolledBack"] is True
    eventually(lambda: len(resources_of(http, pool_id)) == size)


def test_a_patch_that_changes_nothing_answers_the_pool_as_it_is(http: httpx.Client) -> None:
    pool = http.get(POOLS, params={"filter": "(eq,name,tyo-core)"}).json()["items"][0]
    response = http.patch(
        f"{POOLS}/{pool['resourcePoolId']}", json={"description": pool["description"]}
    )
    assert response.status_code == 200
    assert response.json() == http.get(f"{POOLS}/{pool['resourcePoolId']}").json()
