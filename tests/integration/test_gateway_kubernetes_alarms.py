"""Alarms end to end: a node's real condition in the kube-apiserver, the monitoring API,
the alarm notifications a subscriber receives, acknowledgement, and persistence in Redis
across a gateway restart.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.test_kubernetes_alarm_stream import (
    condition,
    healthy,
    make_node,
    now_stamp,
    set_conditions,
)
from tests.kubeapi import KubeAPIServer
from tests.redisserver import RedisServer, redis_server
from tests.servers import serve_gateway
from tests.waiting import eventually
from tests.webhooks import Receiver, running_receiver

pytestmark = pytest.mark.timeout(300)

MON = "/o2ims-infrastructureMonitoring/v1"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def events(receiver: Receiver, path: str, alarm_id: str) -> list[int]:
    found = []
    for received in receiver.received(path):
        body = json.loads(received.body)
        if body.get("alarmEventRecordId") == alarm_id:
            found.append(body["notificationEventType"])
    return found


def test_a_node_condition_raises_notifies_is_acknowledged_clears_and_persists(
    kube_clean: KubeAPIServer,
    kube_admin: httpx.Client,
    redis: RedisServer,
    receiver: Receiver,
) -> None:
    kube = kube_admin
    make_node(kube, "ran-du-1")
    settings: dict[str, Any] = {
        "backend": "kubernetes",
        "kubeconfig": kube_clean.kubeconfig,
        "redis_url": redis.url,
        "store_prefix": f"t{uuid.uuid4().hex[:8]}",
        "access_log": False,
        "callback_allowlist": "127.0.0.1",
    }
    with (
        serve_gateway(**settings) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False, timeout=20) as http,
    ):
        node = next(
            r
            for r in http.get("/o2ims/v1/resources").json()["items"]
            if "ran-du-1" in json.dumps(r)
        )
        subscribed = http.post(
            f"{MON}/alarmSubscriptions", json={"callback": receiver.script("/alarms")}
        )
        assert subscribed.status_code == 201, subscribed.text
        assert (
            http.get(
                f"{MON}/alarms", params={"filter": f"(eq,resourceID,{node['resourceId']})"}
            ).json()
            == []
        )

        # the kubelet reports the node not ready: an alarm and a NEW notification
        since = now_stamp()
        set_conditions(kube, "ran-du-1", condition("Ready", "False", since, since), *healthy()[1:])

        def active() -> dict[str, Any] | None:
            found = http.get(
                f"{MON}/alarms", params={"filter": f"(eq,resourceID,{node['resourceId']})"}
            ).json()
            return next((a for a in found if a["perceivedSeverity"] != 5), None)

        alarm = eventually(active, timeout=30)
        alarm_id = alarm["alarmEventRecordId"]
        assert alarm["perceivedSeverity"] == 0  # CRITICAL
        assert alarm["resourceTypeID"] == node["resourceTypeId"]
        definition = alarm["alarmDefinitionID"]
        assert alarm["alarmAcknowledged"] is False
        eventually(lambda: events(receiver, "/alarms", alarm_id) == [0], timeout=30)

        # bad modifications change nothing
        target = f"{MON}/alarms/{alarm_id}"
        problem(
            http.patch(
                target, json={"alarmAcknowledged": True, "perceivedSeverity": 5}, headers=MERGE
            ),
            400,
        )
        problem(http.patch(target, json={}, headers=MERGE), 400)
        problem(http.patch(target, json={"perceivedSeverity": 3}, headers=MERGE), 400)
        problem(
            http.patch(target, json={"alarmAcknowledged": True, "extra": 1}, headers=MERGE), 400
        )
        problem(http.patch(target, json={"alarmAcknowledged": True}), 415)
        problem(http.patch(target, json={"perceivedSeverity": 5}, headers=MERGE), 409)  # AUTOMATIC
        problem(
            http.patch(
                f"{MON}/alarms/{uuid.uuid4()}", json={"alarmAcknowledged": True}, headers=MERGE
            ),
            404,
        )
        assert http.get(target).json() == alarm

        # acknowledged by an operator: ACKNOWLEDGE
        acked = http.patch(target, json={"alarmAcknowledged": True}, headers=MERGE)
        assert acked.status_code == 200, acked.text
        assert acked.json() == {"alarmAcknowledged": True}
        eventually(lambda: events(receiver, "/alarms", alarm_id) == [0, 3], timeout=30)

        # the node recovers: CLEAR
        later = now_stamp()
        set_conditions(kube, "ran-du-1", condition("Ready", "True", later, later), *healthy()[1:])
        cleared = eventually(
            lambda: (a := http.get(target).json())["perceivedSeverity"] == 5 and a, timeout=30
        )
        assert cleared["alarmClearedTime"] and cleared["alarmAcknowledged"] is True
        eventually(lambda: events(receiver, "/alarms", alarm_id) == [0, 3, 2], timeout=30)

        dictionary = http.get(
            f"/o2ims-infrastructureInventory/v1/resourceTypes/{node['resourceTypeId']}/alarmDictionary"
        ).json()
        assert definition in {d["alarmDefinitionId"] for d in dictionary["alarmDefinition"]}

    # a restarted gateway on the same Redis still has the alarm, as it was left
    with (
        serve_gateway(**settings) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False, timeout=20) as http,
    ):
        again = http.get(f"{MON}/alarms/{alarm_id}")
        assert again.status_code == 200, again.text
        assert again.json() == cleared
        subscriptions = http.get(f"{MON}/alarmSubscriptions").json()
        assert [s["alarmSubscriptionId"] for s in subscriptions] == [
            subscribed.json()["alarmSubscriptionId"]
        ]
