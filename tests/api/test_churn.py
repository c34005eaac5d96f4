"""The simulated O-Cloud's churn reaches the API through the view."""

from __future__ import annotations

import httpx
from tests.servers import serve_gateway
from tests.waiting import eventually

V1 = "/o2ims-infrastructureInventory/v1"


def _nodes(client: httpx.Client) -> dict[str, str]:
    states = {}
    for pool in client.get(f"{V1}/resourcePools").json():
        url = f"{V1}/resourcePools/{pool['resourcePoolId']}/resources"
        for node in client.get(url).json():
            states[node["resourceId"]] = node["extensions"].get("status", "")
    return states


def test_churn_changes_what_the_api_answers() -> None:
    with (
        serve_gateway(simulated_churn_interval=0.02, access_log=False) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False) as client,
    ):
        before = _nodes(client)
        eventually(lambda: _nodes(client) != before, timeout=20, interval=0.1)
        metrics = client.get("/metrics").text
        assert 'netweave_inventory_events_total{kind="ResourceInfo"' in metrics
