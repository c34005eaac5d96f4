"""The simulated O-Cloud's churn reaches the API through the view."""

from __future__ import annotations

import time

import httpx
from tests.servers import serve_gateway

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
        deadline = time.monotonic() + 20
        changed = False
        while time.monotonic() < deadline and not changed:
            time.sleep(0.1)
            changed = _nodes(client) != before
        assert changed, "no churn became visible through the API"
        metrics = client.get("/metrics").text
        assert 'netweave_inventory_events_total{kind="ResourceInfo"' in metrics
