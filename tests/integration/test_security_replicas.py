"""Security state shared by replicas through one real Redis: rate limits, tenants, audit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.credentials import AUDIENCE, ISSUER, TokenIssuer
from tests.redisserver import RedisServer, redis_server
from tests.servers import GatewayProcess, gateway_processes
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(300)

POOLS = "/o2ims-infrastructureInventory/v1/resourcePools"
RATE, BURST = 1.0, 4
TENANCY = {
    "tenants": [
        {"tenantId": "smo-r", "name": "R", "quotas": {"requestsPerSecond": RATE, "burst": BURST}},
    ],
    "users": [{"tenantId": "smo-r", "subject": "smo-r-client"}],
    "roleBindings": [
        {"subject": "smo-r-client", "role": "tenant-viewer", "tenantId": "smo-r"},
        {"subject": "ops", "role": "platform-admin"},
    ],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secure-replicas")


@pytest.fixture(scope="module")
def issuer(workdir: Path) -> TokenIssuer:
    return TokenIssuer(workdir / "signing.pem")


@pytest.fixture(scope="module")
def redis(workdir: Path) -> Iterator[RedisServer]:
    with redis_server(workdir / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def replicas(
    workdir: Path, issuer: TokenIssuer, redis: RedisServer
) -> Iterator[list[GatewayProcess]]:
    tenancy = workdir / "tenancy.yaml"
    tenancy.write_text(yaml.safe_dump(TENANCY))
    with gateway_processes(
        2,
        workdir,
        redis_url=redis.url,
        store_prefix=f"t{uuid.uuid4().hex[:8]}",
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_key_files=str(issuer.key_file),
        tenancy_file=str(tenancy),
        access_log="false",
    ) as started:
        yield started


def test_a_tenants_rate_limit_is_shared_by_the_replicas(
    replicas: list[GatewayProcess], issuer: TokenIssuer
) -> None:
    headers = issuer.headers("smo-r-client")
    clients = [httpx.Client(base_url=r.base_url, trust_env=False, timeout=10) for r in replicas]
    try:
        started = time.monotonic()
        answers = [clients[i % 2].get(POOLS, headers=headers) for i in range(16)]
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.close()
    admitted = [i for i, a in enumerate(answers) if a.status_code == 200]
    limited = [i for i, a in enumerate(answers) if a.status_code == 429]
    assert len(admitted) + len(limited) == len(answers), [a.status_code for a in answers]
    # one bucket for both: the burst plus what refilled meanwhile, not twice that
    assert BURST <= len(admitted) <= BURST + int(RATE * elapsed) + 1, (len(admitted), elapsed)
    assert {i % 2 for i in limited} == {0, 1}  # both replicas refuse once the bucket is empty
    assert all(1 <= int(answers[i].headers["retry-after"]) <= 2 for i in limited)
    assert all(
        a.headers["content-type"] == "application/problem+json"
        for a in answers
        if a.status_code == 429
    )


def test_tenancy_changes_on_one_replica_apply_on_the_other(
    replicas: list[GatewayProcess], issuer: TokenIssuer
) -> None:
    first, second = replicas
    ops = issuer.headers("ops")
    newcomer = issuer.headers("smo-n-client")
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert http.get(second.base_url + POOLS, headers=newcomer).status_code == 403
        tenant = http.post(
            first.base_url + "/o2ims/v1/tenants",
            json={"tenantId": "smo-n", "name": "N"},
            headers=ops,
        )
        assert tenant.status_code == 201, tenant.text
        user = http.post(
            first.base_url + "/o2ims/v1/tenants/smo-n/users",
            json={"subject": "smo-n-client"},
            headers=ops,
        )
        assert user.status_code == 201, user.text
        binding = http.post(
            first.base_url + "/o2ims/v1/roleBindings",
            json={"subject": "smo-n-client", "role": "tenant-viewer", "tenantId": "smo-n"},
            headers=ops,
        )
        assert binding.status_code == 201, binding.text
        eventually(
            lambda: http.get(second.base_url + POOLS, headers=newcomer).status_code == 200,
            timeout=10,
        )
        # the audit trail written by the first replica is readable on the second
        events = http.get(
            second.base_url + "/o2ims/v1/audit/events",
            params={"filter": "(eq,action,tenants:create)"},
            headers=ops,
        )
        assert events.status_code == 200, events.text
        assert any(e["target"] == "/o2ims/v1/tenants" for e in events.json()["items"])
