"""Several gateway replicas sharing one Redis, watching one real Kubernetes API server.

Every replica's view sees every change; the emitter lease makes one of them write the
notifications; every replica delivers from the shared outbox.  The tests kill replicas
(SIGKILL) and Redis itself and check that nothing accepted is lost and duplicates stay
within the at-least-once window.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.kubeapi import KubeAPIServer
from tests.redisserver import RedisServer, redis_server
from tests.servers import GatewayProcess, gateway_processes
from tests.waiting import eventually
from tests.webhooks import Receiver, Reply, running_receiver

pytestmark = pytest.mark.timeout(600)

SUBS = "/o2ims-infrastructureInventory/v1/subscriptions"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


def replica_settings(kube: KubeAPIServer, redis: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "backend": "kubernetes",
        "kubeconfig": str(kube.kubeconfig),
        "redis_url": redis.url,
        "store_prefix": f"t{uuid.uuid4().hex[:8]}",
        "callback_allowlist": "127.0.0.1",
        "emitter_lease_ttl": "2",
        "delivery_visibility_timeout": "3",
        "access_log": "false",
        **extra,
    }


def create_node(admin: httpx.Client, name: str) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"o2ims.oran.org/resource-pool": "replicas"}},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
    }
    response = admin.post("/api/v1/nodes", json=node)
    assert response.status_code == 201, response.text


def created_names(receiver: Receiver, path: str) -> Counter[str]:
    names: Counter[str] = Counter()
    for delivery in receiver.received(path):
        payload = orjson.loads(delivery.body)
        if payload["notificationEventType"] == 0:
            names[payload["postObjectState"]["extensions"]["name"]] += 1
    return names


def emitter(replicas: list[GatewayProcess]) -> GatewayProcess:
    def holder() -> GatewayProcess | None:
        for replica in replicas:
            if replica.process.poll() is not None:
                continue
            metrics = httpx.get(f"{replica.base_url}/metrics", trust_env=False).text
            if "netweave_notification_emitter 1.0" in metrics:
                return replica
        return None

    found: GatewayProcess = eventually(holder, timeout=30)
    return found


def subscribe(replica: GatewayProcess, callback: str) -> dict[str, Any]:
    response = httpx.post(
        f"{replica.base_url}{SUBS}",
        json={"callback": callback, "filter": "(eq,objectType,ResourceInfo)"},
        trust_env=False,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_three_replicas_share_subscriptions_and_survive_a_killed_emitter(
    kube_admin: httpx.Client,
    kube_clean: KubeAPIServer,
    redis: RedisServer,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    path = f"/replicas/{uuid.uuid4()}"
    callback = receiver.script(path)
    settings = replica_settings(kube_clean, redis)
    with gateway_processes(3, tmp_path, **settings) as replicas:
        created = subscribe(replicas[0], callback)
        for replica in replicas[1:]:  # every replica sees the shared subscription
            listed = httpx.get(f"{replica.base_url}{SUBS}", trust_env=False).json()
            assert created in listed
        for index in range(5):
            create_node(kube_admin, f"before-{index}")
        eventually(lambda: len(created_names(receiver, path)) == 5, timeout=30)
        time.sleep(1.0)  # room for duplicates to show up if there were any
        assert all(count == 1 for count in created_names(receiver, path).values())

        # kill the emitter; changes made during the take-over are still notified
        emitter(replicas).kill()
        survivors = [replica for replica in replicas if replica.process.poll() is None]
        for index in range(5):
            create_node(kube_admin, f"after-{index}")
        expected = {f"before-{i}" for i in range(5)} | {f"after-{i}" for i in range(5)}
        eventually(lambda: set(created_names(receiver, path)) == expected, timeout=60)
        new_emitter = emitter(survivors)
        assert new_emitter in survivors
        time.sleep(1.0)
        counts = created_names(receiver, path)
        assert all(counts[f"before-{i}"] == 1 for i in range(5))
        # at-least-once across the take-over: never more than twice
        assert all(1 <= counts[f"after-{i}"] <= 2 for i in range(5))


def test_deliveries_in_flight_on_a_killed_replica_are_completed_by_another(
    kube_admin: httpx.Client,
    kube_clean: KubeAPIServer,
    redis: RedisServer,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    path = f"/slow/{uuid.uuid4()}"
    # the check GET, then slow answers: deliveries stay in flight for a while
    callback = receiver.script(path, Reply(204), then=Reply(204, delay=1.5))
    settings = replica_settings(kube_clean, redis)
    with gateway_processes(2, tmp_path, **settings) as replicas:
        subscribe(replicas[0], callback)
        for index in range(4):
            create_node(kube_admin, f"slow-{index}")
        eventually(lambda: receiver.received(path), timeout=30)  # a delivery is under way
        for replica in replicas:  # kill whichever replica is delivering right now
            replica.kill()
            break
        expected = {f"slow-{i}" for i in range(4)}
        eventually(lambda: set(created_names(receiver, path)) == expected, timeout=90)


def test_redis_outage_answers_503_keeps_reads_and_loses_nothing(
    kube_admin: httpx.Client,
    kube_clean: KubeAPIServer,
    redis: RedisServer,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    path = f"/outage/{uuid.uuid4()}"
    callback = receiver.script(path)
    settings = replica_settings(kube_clean, redis)
    with gateway_processes(1, tmp_path, **settings) as [gateway]:
        subscribe(gateway, callback)
        redis.kill()
        problem = httpx.post(
            f"{gateway.base_url}{SUBS}",
            json={"callback": receiver.script(f"/other/{uuid.uuid4()}")},
            trust_env=False,
            timeout=30,
        )
        assert problem.status_code == 503, problem.text
        assert problem.headers["content-type"] == "application/problem+json"
        pools = httpx.get(
            f"{gateway.base_url}/o2ims-infrastructureInventory/v1/resourcePools", trust_env=False
        )
        assert pools.status_code == 200
        create_node(kube_admin, "during-outage")  # seen while Redis is down: waits in memory
        time.sleep(1.0)
        redis.restart()
        eventually(lambda: "during-outage" in created_names(receiver, path), timeout=60)
