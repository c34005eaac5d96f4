"""The secured gateway end to end: bearer tokens, roles, tenant isolation, quotas, audit.

One gateway (plain HTTP on loopback, token authentication with a key file) serves a
simulated O-Cloud whose pools belong to tenants; the tenancy file registers the tenants,
their users and role bindings.  Every check goes through real HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.credentials import AUDIENCE, ISSUER, TokenIssuer
from tests.servers import RunningGateway, serve_gateway
from tests.waiting import eventually
from tests.webhooks import Receiver, running_receiver

from netweave.security.rbac import ROUTE_PERMISSIONS

V1 = "/o2ims-infrastructureInventory/v1"
POOLS = f"{V1}/resourcePools"
SUBS = f"{V1}/subscriptions"
AUDIT = "/o2ims/v1/audit/events"

OWNERS = {
    "mad-ran-edge": "smo-a",
    "mad-core": "smo-b",
    "dal-ran-edge": "smo-b",
    "dal-storage": "shared",
}
TENANCY = {
    "tenants": [
        {
            "tenantId": "smo-a",
            "name": "SMO A",
            "quotas": {"maxSubscriptions": 3, "maxResourcePools": 2},
        },
        {"tenantId": "smo-b", "name": "SMO B"},
        {"tenantId": "smo-s", "name": "Suspended SMO", "status": "suspended"},
        {
            "tenantId": "smo-r",
            "name": "Rate-limited SMO",
            "quotas": {"requestsPerSecond": 0.5, "burst": 2},
        },
    ],
    "users": [
        {"tenantId": "smo-a", "subject": "smo-a-client"},
        {"tenantId": "smo-a", "subject": "smo-a-reader"},
        {"tenantId": "smo-b", "subject": "smo-b-client"},
        {"tenantId": "smo-s", "subject": "smo-s-client"},
        {"tenantId": "smo-r", "subject": "smo-r-client"},
    ],
    "roleBindings": [
        {"subject": "smo-a-client", "role": "tenant-admin", "tenantId": "smo-a"},
        {"subject": "smo-a-reader", "role": "tenant-viewer", "tenantId": "smo-a"},
        {"subject": "smo-b-client", "role": "tenant-admin", "tenantId": "smo-b"},
        {"subject": "smo-s-client", "role": "tenant-admin", "tenantId": "smo-s"},
        {"subject": "smo-r-client", "role": "tenant-viewer", "tenantId": "smo-r"},
        {"subject": "ops", "role": "platform-admin"},
        {"subject": "noc", "role": "viewer"},
    ],
}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> TokenIssuer:
    return TokenIssuer(tmp_path_factory.mktemp("idp") / "signing.pem")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(
    issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    tenancy = tmp_path_factory.mktemp("tenancy") / "tenancy.yaml"
    tenancy.write_text(yaml.safe_dump(TENANCY))
    with serve_gateway(
        access_log=False,
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_key_files=str(issuer.key_file),
        tenancy_file=tenancy,
        simulated_pool_owners=OWNERS,
        callback_allowlist="127.0.0.1",
        callback_verify_timeout=0.5,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def http(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=10, trust_env=False) as client:
        yield client


def as_(issuer: TokenIssuer, subject: str, **claims: Any) -> dict[str, str]:
    return issuer.headers(subject, **claims)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def pool_names(http: httpx.Client, headers: dict[str, str]) -> set[str]:
    response = http.get(POOLS, headers=headers)
    assert response.status_code == 200, response.text
    return {pool["name"] for pool in response.json()}


def pool_id(http: httpx.Client, issuer: TokenIssuer, name: str) -> str:
    pools = http.get(POOLS, headers=as_(issuer, "ops")).json()
    return next(pool["resourcePoolId"] for pool in pools if pool["name"] == name)


def audit_events(
    http: httpx.Client, issuer: TokenIssuer, subject: str = "ops", **params: str
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    query: dict[str, str] = dict(params)
    while True:
        response = http.get(AUDIT, params=query, headers=as_(issuer, subject))
        assert response.status_code == 200, response.text
        page = response.json()
        events.extend(page["items"])
        if not page.get("nextMarker"):
            return events
        query = {**params, "nextpage_opaque_marker": page["nextMarker"]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --------------------------------------------------------------------------- authentication


def test_requests_without_a_token_are_401_with_a_challenge(http: httpx.Client) -> None:
    for path in (POOLS, SUBS, V1, "/o2ims/v1/tenants", "/no/such/path"):
        response = http.get(path)
        problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_probes_metrics_and_the_api_description_are_public(http: httpx.Client) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert http.get(path).status_code == 200, path


def _bad_tokens(issuer: TokenIssuer) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    now = int(time.time())
    stranger = TokenIssuer(issuer.key_file.with_name("stranger.pem"), kid="unknown-kid")
    issuer.key_file.write_bytes(issuer.public_pem())  # the stranger must not replace it
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ops", "iat": now, "exp": now + 300}
    none_token = ".".join(
        [
            b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
            b64(json.dumps(claims).encode()),
            "",
        ]
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    payload = b64(json.dumps(claims).encode())
    mac = hmac.new(issuer.public_pem(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert isinstance(stranger.key, rsa.RSAPrivateKey)
    return {
        "expired": issuer.mint("ops", exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "wrong audience": issuer.mint("ops", aud="someone-else"),
        "wrong issuer": issuer.mint("ops", iss="https://evil.example.net"),
        "alg none": none_token,
        "HS256 with the public key as secret": f"{header}.{payload}.{b64(mac)}",
        "unknown kid": stranger.mint("ops"),
        "not a JWT": "definitely-not-a-token",
    }


def test_bad_tokens_are_401_and_audited(http: httpx.Client, issuer: TokenIssuer) -> None:
    for name, token in _bad_tokens(issuer).items():
        response = http.get(POOLS, headers={"Authorization": f"Bearer {token}"})
        problem(response, 401)
        assert "www-authenticate" in response.headers, name
    failures = audit_events(http, issuer, filter="(eq,action,authentication);(eq,outcome,failure)")
    assert len(failures) >= 7
    assert all(event["target"] for event in failures)
    assert not any("Bearer" in json.dumps(event) for event in failures)  # no token in records


def test_a_valid_token_of_a_platform_admin_sees_everything(
    http: httpx.Client, issuer: TokenIssuer
) -> None:
    assert len(pool_names(http, as_(issuer, "ops"))) == 7


# --------------------------------------------------------------------------- roles


def test_roles_are_enforced(http: httpx.Client, issuer: TokenIssuer, receiver: Receiver) -> None:
    callback = receiver.script("/roles")
    # a viewer reads but cannot subscribe; a subject with no binding can do nothing
    assert http.get(POOLS, headers=as_(issuer, "noc")).status_code == 200
    problem(http.post(SUBS, json={"callback": callback}, headers=as_(issuer, "noc")), 403)
    problem(http.get(POOLS, headers=as_(issuer, "nobody-knows-me")), 403)
    # a tenant viewer reads its tenant but cannot subscribe or read the audit trail
    assert http.get(POOLS, headers=as_(issuer, "smo-a-reader")).status_code == 200
    problem(http.post(SUBS, json={"callback": callback}, headers=as_(issuer, "smo-a-reader")), 403)
    problem(http.get(AUDIT, headers=as_(issuer, "smo-a-reader")), 403)
    # tenant admins manage no tenants
    problem(
        http.post(
            "/o2ims/v1/tenants",
            json={"tenantId": "x", "name": "x"},
            headers=as_(issuer, "smo-a-client"),
        ),
        403,
    )
    # scopes from the token map to roles too (role:o2ims-reader -> viewer)
    assert (
        http.get(
            POOLS, headers=as_(issuer, "idp-reader", scope="openid role:o2ims-reader")
        ).status_code
        == 200
    )


def test_suspended_and_unknown_tenants_are_refused(http: httpx.Client, issuer: TokenIssuer) -> None:
    assert (
        "suspended" in problem(http.get(POOLS, headers=as_(issuer, "smo-s-client")), 403)["detail"]
    )
    unknown = as_(issuer, "visitor", tenant="no-such-tenant", scope="role:o2ims-reader")
    assert "not registered" in problem(http.get(POOLS, headers=unknown), 403)["detail"]


# --------------------------------------------------------------------------- tenant isolation


def test_a_tenant_lists_only_its_own_and_shared_pools(
    http: httpx.Client, issuer: TokenIssuer
) -> None:
    assert pool_names(http, as_(issuer, "smo-a-client")) == {"mad-ran-edge", "dal-storage"}
    assert pool_names(http, as_(issuer, "smo-b-client")) == {
        "mad-core",
        "dal-ran-edge",
        "dal-storage",
    }


def test_another_tenants_objects_answer_404(http: httpx.Client, issuer: TokenIssuer) -> None:
    a = as_(issuer, "smo-a-client")
    b_pool = pool_id(http, issuer, "mad-core")
    b_resources = http.get(f"{POOLS}/{b_pool}/resources", headers=as_(issuer, "ops")).json()
    assert b_resources
    b_resource = b_resources[0]["resourceId"]
    for path in (
        f"{POOLS}/{b_pool}",
        f"{POOLS}/{b_pool}/resources",
        f"{POOLS}/{b_pool}/resources/{b_resource}",
    ):
        body = problem(http.get(path, headers=a), 404)
        assert body["detail"] == problem(
            http.get(path.replace(b_pool, "0" * 8 + b_pool[8:]), headers=a), 404
        )["detail"].replace("0" * 8 + b_pool[8:], b_pool)
    # a filter naming B's pool finds nothing, without telling whether it exists
    found = http.get(f"{POOLS}", params={"filter": f"(eq,resourcePoolId,{b_pool})"}, headers=a)
    assert found.status_code == 200 and found.json() == []
    own = pool_id(http, issuer, "mad-ran-edge")
    assert http.get(f"{POOLS}/{own}/resources", headers=a).status_code == 200


def test_subscriptions_belong_to_their_tenant(
    http: httpx.Client, issuer: TokenIssuer, receiver: Receiver
) -> None:
    a, b = as_(issuer, "smo-a-client"), as_(issuer, "smo-b-client")
    callback = receiver.script("/owned")
    created = http.post(SUBS, json={"callback": callback}, headers=a)
    assert created.status_code == 201, created.text
    sub_id = created.json()["subscriptionId"]
    # B may use the same callback and filter: uniqueness is per tenant (no oracle)
    same = http.post(SUBS, json={"callback": callback}, headers=b)
    assert same.status_code == 201, same.text
    try:
        assert sub_id not in {s["subscriptionId"] for s in http.get(SUBS, headers=b).json()}
        problem(http.get(f"{SUBS}/{sub_id}", headers=b), 404)
        problem(http.delete(f"{SUBS}/{sub_id}", headers=b), 404)
        assert (
            http.get(f"{SUBS}/{sub_id}", headers=a).status_code == 200
        )  # B's guess changed nothing
        assert sub_id in {
            s["subscriptionId"] for s in http.get(SUBS, headers=as_(issuer, "ops")).json()
        }
    finally:
        http.delete(f"{SUBS}/{same.json()['subscriptionId']}", headers=b)
        http.delete(f"{SUBS}/{sub_id}", headers=a)


def churn(gateway: RunningGateway, steps: int) -> None:
    adapter = gateway.app.state.view._adapter
    loop: asyncio.AbstractEventLoop = gateway.app.state.loop

    async def step() -> None:
        for _ in range(steps):
            adapter.apply_churn_step()

    asyncio.run_coroutine_threadsafe(step(), loop).result(timeout=10)


def test_notifications_carry_only_the_tenants_objects(
    http: httpx.Client, issuer: TokenIssuer, receiver: Receiver, gateway: RunningGateway
) -> None:
    a, ops = as_(issuer, "smo-a-client"), as_(issuer, "ops")
    b_pools = {pool_id(http, issuer, "mad-core"), pool_id(http, issuer, "dal-ran-edge")}
    visible_pools = {pool_id(http, issuer, "mad-ran-edge"), pool_id(http, issuer, "dal-storage")}
    naming_b = ",".join(sorted(b_pools))
    subs = [
        http.post(SUBS, json={"callback": receiver.script("/a-all")}, headers=a),
        http.post(
            SUBS,
            json={
                "callback": receiver.script("/a-names-b"),
                "filter": f"(in,resourcePoolId,{naming_b})",
            },
            headers=a,
        ),
        http.post(
            SUBS,
            json={
                "callback": receiver.script("/ops-names-b"),
                "filter": f"(in,resourcePoolId,{naming_b})",
            },
            headers=ops,
        ),
    ]
    assert [s.status_code for s in subs] == [201, 201, 201], [s.text for s in subs]
    try:
        churn(gateway, 60)
        eventually(lambda: len(receiver.received("/ops-names-b")) > 0, timeout=15)
        time.sleep(0.5)  # let the other deliveries of the same changes arrive
        assert receiver.received("/a-names-b") == []
        seen_pools = set()
        for received in receiver.received("/a-all"):
            body = json.loads(received.body)
            obj = body.get("postObjectState") or body.get("priorObjectState") or {}
            seen_pools.add(obj.get("resourcePoolId"))
        assert not seen_pools & b_pools
        assert seen_pools & visible_pools  # it was told of its own pools' changes
        assert seen_pools - {None} <= visible_pools
    finally:
        for sub, headers in zip(subs, (a, a, ops), strict=True):
            http.delete(f"{SUBS}/{sub.json()['subscriptionId']}", headers=headers)


# --------------------------------------------------------------------------- quotas and rates


def test_the_subscription_quota_is_403(
    http: httpx.Client, issuer: TokenIssuer, receiver: Receiver
) -> None:
    a = as_(issuer, "smo-a-client")
    created = []
    try:
        for index in range(3):
            response = http.post(
                SUBS, json={"callback": receiver.script(f"/quota-{index}")}, headers=a
            )
            assert response.status_code == 201, response.text
            created.append(response.json()["subscriptionId"])
        before = http.get(SUBS, headers=a).json()
        body = problem(
            http.post(SUBS, json={"callback": receiver.script("/quota-x")}, headers=a), 403
        )
        assert "quota" in body["detail"]
        assert http.get(SUBS, headers=a).json() == before
    finally:
        for sub_id in created:
            http.delete(f"{SUBS}/{sub_id}", headers=a)


def test_the_tenant_request_rate_is_429_with_retry_after(
    http: httpx.Client, issuer: TokenIssuer
) -> None:
    r = as_(issuer, "smo-r-client")
    statuses = [http.get(POOLS, headers=r) for _ in range(4)]
    assert [s.status_code for s in statuses[:2]] == [200, 200]
    limited = [s for s in statuses if s.status_code == 429]
    assert limited, [s.status_code for s in statuses]
    problem(limited[0], 429)
    assert int(limited[0].headers["retry-after"]) >= 1
    # other tenants are not limited by smo-r's bucket
    assert all(
        http.get(POOLS, headers=as_(issuer, "smo-a-client")).status_code == 200 for _ in range(5)
    )


# --------------------------------------------------------------------------- the audit trail


def _concrete(template: str) -> str:
    import re

    return re.sub(r"{(\w+)}", "audit-probe", template)


def test_every_mutating_route_is_audited(http: httpx.Client, issuer: TokenIssuer) -> None:
    ops = as_(issuer, "ops")
    mutating = sorted(
        key for key in ROUTE_PERMISSIONS if key[0] in {"POST", "PATCH", "PUT", "DELETE"}
    )
    assert len(mutating) >= 8
    sent = []
    for method, template in mutating:
        path = _concrete(template)
        response = http.request(method, path, json={} if method != "DELETE" else None, headers=ops)
        assert response.status_code < 500, (method, path, response.text)
        sent.append((method, path, response.status_code))
    events = audit_events(http, issuer, filter="(eq,principal,ops)")
    recorded = {(e["method"], e["target"], e["status"]) for e in events}
    for item in sent:
        assert item in recorded, item
    assert all(e["requestId"] and e["sourceAddress"] == "127.0.0.1" for e in events)


def test_tenant_admins_read_only_their_tenants_audit_records(
    http: httpx.Client, issuer: TokenIssuer, receiver: Receiver
) -> None:
    b = as_(issuer, "smo-b-client")
    created = http.post(SUBS, json={"callback": receiver.script("/audited")}, headers=b)
    assert created.status_code == 201
    http.delete(f"{SUBS}/{created.json()['subscriptionId']}", headers=b)
    mine = audit_events(http, issuer, "smo-b-client")
    assert mine and {e["tenantId"] for e in mine} == {"smo-b"}
    assert {"subscriptions:create", "subscriptions:delete"} <= {e["action"] for e in mine}
    assert audit_events(http, issuer, "smo-a-client", filter="(eq,tenantId,smo-b)") == []


# --------------------------------------------------------------------------- admin API


def test_tenants_users_and_bindings_managed_through_the_api_take_effect(
    http: httpx.Client, issuer: TokenIssuer
) -> None:
    ops = as_(issuer, "ops")
    newcomer = as_(issuer, "smo-c-client")
    problem(http.get(POOLS, headers=newcomer), 403)  # nobody yet
    assert (
        http.post(
            "/o2ims/v1/tenants", json={"tenantId": "smo-c", "name": "SMO C"}, headers=ops
        ).status_code
        == 201
    )
    user = http.post("/o2ims/v1/tenants/smo-c/users", json={"subject": "smo-c-client"}, headers=ops)
    assert user.status_code == 201, user.text
    binding = http.post(
        "/o2ims/v1/roleBindings",
        json={"subject": "smo-c-client", "role": "tenant-viewer", "tenantId": "smo-c"},
        headers=ops,
    )
    assert binding.status_code == 201, binding.text
    assert pool_names(http, newcomer) == {"dal-storage"}  # only the shared pool
    patched = http.patch("/o2ims/v1/tenants/smo-c", json={"status": "suspended"}, headers=ops)
    assert patched.status_code == 200, patched.text
    problem(http.get(POOLS, headers=newcomer), 403)
    assert http.delete("/o2ims/v1/tenants/smo-c", headers=ops).status_code == 204
    problem(http.get(POOLS, headers=newcomer), 403)
    actions = {e["action"] for e in audit_events(http, issuer, filter="(eq,principal,ops)")}
    assert {"tenants:create", "tenants:update", "roleBindings:create", "tenants:delete"} <= actions


# --------------------------------------------------------------------------- headers


def test_security_headers_on_every_answer(http: httpx.Client, issuer: TokenIssuer) -> None:
    for response in (
        http.get(POOLS, headers=as_(issuer, "ops")),
        http.get(POOLS),
        http.get("/healthz"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers  # plain HTTP here


def test_a_tenant_token_claiming_a_system_role_acts_only_within_its_tenant(
    http: httpx.Client, issuer: TokenIssuer
) -> None:
    bold = as_(issuer, "smo-a-bot", tenant="smo-a", scope="role:o2ims-admin")
    assert pool_names(http, bold) == {"mad-ran-edge", "dal-storage"}
    quotas = {"quotas": {"maxSubscriptions": 1000}}
    problem(http.patch("/o2ims/v1/tenants/smo-a", json=quotas, headers=bold), 403)
    binding = {"subject": "smo-a-bot", "role": "platform-admin"}
    problem(http.post("/o2ims/v1/roleBindings", json=binding, headers=bold), 403)
    problem(http.delete("/o2ims/v1/tenants/smo-a", headers=bold), 403)
    assert http.get("/o2ims/v1/tenants/smo-a", headers=as_(issuer, "ops")).status_code == 200


def test_an_unreachable_key_set_is_503_not_500(tmp_path: Path) -> None:
    from tests.servers import free_port

    closed = f"http://127.0.0.1:{free_port()}/jwks.json"
    with (
        serve_gateway(
            access_log=False, token_issuer=ISSUER, token_audience=AUDIENCE, token_jwks_url=closed
        ) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False, timeout=20) as client,
    ):
        issuer = TokenIssuer(tmp_path / "key.pem")
        response = client.get(POOLS, headers=issuer.headers("ops"))
        problem(response, 503)
        assert int(response.headers["retry-after"]) >= 1


def test_dead_letters_are_scoped_to_the_tenant_of_their_subscription(
    http: httpx.Client, issuer: TokenIssuer, receiver: Receiver, gateway: RunningGateway
) -> None:
    from netweave.store.base import Delivery

    b = as_(issuer, "smo-b-client")
    created = http.post(SUBS, json={"callback": receiver.script("/dead")}, headers=b)
    assert created.status_code == 201
    sub_id = created.json()["subscriptionId"]
    store = gateway.app.state.store

    async def bury() -> None:
        delivery = Delivery(
            subscription_id=sub_id,
            notification_id="00000000-0000-4000-8000-000000000001",
            callback=receiver.base_url + "/dead",
            body=b"{}",
            event_time=time.time(),
        )
        await store.enqueue([delivery])
        for taken in await store.take("test", limit=10, wait=1.0):
            await store.dead_letter(taken, reason="test")

    asyncio.run_coroutine_threadsafe(bury(), gateway.app.state.loop).result(timeout=10)
    dead = "/o2ims/v1/deliveries/dead"
    try:
        theirs = http.get(dead, headers=b).json()["items"]
        assert [item["subscriptionId"] for item in theirs] == [sub_id]
        assert sub_id in {
            i["subscriptionId"] for i in http.get(dead, headers=as_(issuer, "ops")).json()["items"]
        }
        a = as_(issuer, "smo-a-client")
        assert http.get(dead, headers=a).json()["items"] == []
        problem(http.post(f"{dead}/{theirs[0]['deadLetterId']}/replay", headers=a), 404)
        assert http.post(f"{dead}/{theirs[0]['deadLetterId']}/replay", headers=b).status_code == 202
    finally:
        http.delete(f"{SUBS}/{sub_id}", headers=b)


def test_pool_writes_respect_tenancy_and_the_pool_quota(
    http: httpx.Client, issuer: TokenIssuer
) -> None:
    a, b, ops = as_(issuer, "smo-a-client"), as_(issuer, "smo-b-client"), as_(issuer, "ops")
    gw_pools = "/o2ims/v1/resourcePools"
    created = http.post(
        gw_pools, json={"name": "smo-a-extra", "extensions": {"tenant": "smo-b"}}, headers=a
    )
    problem(created, 400)  # a tenant cannot give a pool away
    created = http.post(gw_pools, json={"name": "smo-a-extra"}, headers=a)
    assert created.status_code == 201, created.text
    own_id = created.json()["resourcePoolId"]
    try:
        assert created.json()["extensions"]["tenant"] == "smo-a"
        assert "smo-a-extra" in pool_names(http, a)
        assert "smo-a-extra" not in pool_names(http, b)
        # mad-ran-edge and smo-a-extra: the quota of 2 is reached
        body = problem(http.post(gw_pools, json={"name": "smo-a-third"}, headers=a), 403)
        assert "quota" in body["detail"]
        # B cannot see A's pool; A cannot change the shared one; a viewer cannot write
        problem(http.patch(f"{gw_pools}/{own_id}", json={"description": "mine"}, headers=b), 404)
        problem(http.delete(f"{gw_pools}/{own_id}", headers=b), 404)
        shared = pool_id(http, issuer, "dal-storage")
        problem(http.patch(f"{gw_pools}/{shared}", json={"description": "mine"}, headers=a), 403)
        problem(
            http.patch(
                f"{gw_pools}/{own_id}",
                json={"description": "x"},
                headers=as_(issuer, "smo-a-reader"),
            ),
            403,
        )
        # a platform admin creates a pool for a tenant
        given = http.post(
            gw_pools, json={"name": "for-smo-b", "extensions": {"tenant": "smo-b"}}, headers=ops
        )
        assert given.status_code == 201, given.text
        assert "for-smo-b" in pool_names(http, b)
        http.delete(f"{gw_pools}/{given.json()['resourcePoolId']}", headers=ops)
        actions = {e["action"] for e in audit_events(http, issuer, "smo-a-client")}
        assert "resourcePools:create" in actions
    finally:
        assert http.delete(f"{gw_pools}/{own_id}", headers=a).status_code == 204
