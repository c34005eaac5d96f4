"""The tenancy admin API over a real HTTP stack: routes, tenant scoping and bad requests.

The app is the router with the ProblemDetails handlers and a test middleware that sets the
request's principal from the ``X-Test-Tenant`` header (absent: a platform principal), in
place of the gateway's authentication, which checks the route permissions before this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from netweave.api import tenancy
from netweave.api.problems import install_problem_handlers
from netweave.query import PageMarkers
from netweave.security.principal import Principal
from netweave.security.tenancy import Directory, TenancySnapshot
from netweave.security.tenancy_service import TenancyService
from netweave.store.tenants import InMemoryTenancyStore

API = "/o2ims/v1"
PROBLEM = "application/problem+json"
SPIFFE_A = "spiffe://smo-a.example/o2ims"


class PrincipalFromHeader:
    """Sets ``scope["netweave.principal"]``: tenant ``X-Test-Tenant``, or platform scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            tenant = headers.get(b"x-test-tenant")
            scope["netweave.principal"] = Principal(
                subject="tester",
                tenant=tenant.decode() if tenant else None,
                roles=frozenset({"platform-admin"}),
                auth=frozenset({"token"}),
            )
        await self.app(scope, receive, send)


class Gateway:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.store = InMemoryTenancyStore()
        self.directory = Directory(self.store)
        app = FastAPI()
        install_problem_handlers(app)
        app.include_router(tenancy.router)
        app.add_middleware(PrincipalFromHeader)
        app.state.tenancy = TenancyService(
            self.store,
            directory=self.directory,
            markers=PageMarkers(b"test-paging-key"),
            page_size=2,
            clock=lambda: self.now,
        )
        self.app = app


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        yield client


def as_tenant(tenant_id: str) -> dict[str, str]:
    return {"X-Test-Tenant": tenant_id}


async def created(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"{API}{path}", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
async def two_tenants(http: httpx.AsyncClient) -> dict[str, Any]:
    """Tenants smo-a and smo-b, a user and a tenant binding in each, one system binding."""
    records: dict[str, Any] = {}
    for tenant_id in ("smo-a", "smo-b"):
        records[tenant_id] = await created(
            http, "/tenants", {"tenantId": tenant_id, "name": tenant_id.upper()}
        )
        subject = f"spiffe://{tenant_id}.example/o2ims"
        records[f"{tenant_id}/user"] = await created(
            http, f"/tenants/{tenant_id}/users", {"subject": subject}
        )
        records[f"{tenant_id}/binding"] = await created(
            http,
            "/roleBindings",
            {"subject": subject, "role": "tenant-admin", "tenantId": tenant_id},
        )
    records["system"] = await created(
        http, "/roleBindings", {"subject": "ops@example.net", "role": "platform-admin"}
    )
    return records


# -- good cases -----------------------------------------------------------------------------


async def test_create_read_list_patch_and_delete_a_tenant(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    body = {"tenantId": "smo-a", "name": "SMO A", "quotas": {"maxSubscriptions": 10}}
    response = await http.post(f"{API}/tenants", json=body)
    assert response.status_code == 201
    assert response.headers["location"] == "http://gw.test/o2ims/v1/tenants/smo-a"
    assert response.json() == {
        "tenantId": "smo-a",
        "name": "SMO A",
        "description": "",
        "status": "active",
        "quotas": {
            "maxSubscriptions": 10,
            "maxResourcePools": None,
            "requestsPerSecond": None,
            "burst": None,
        },
        "createdAt": "2023-11-14T22:13:20.000Z",
        "updatedAt": "2023-11-14T22:13:20.000Z",
    }
    tenant = response.json()
    assert (await http.get(f"{API}/tenants/smo-a")).json() == tenant
    listed = await http.get(f"{API}/tenants")
    assert listed.json() == {"items": [tenant], "nextMarker": None}

    patched = await http.patch(
        f"{API}/tenants/smo-a",
        content=b'{"status": "suspended", "quotas": {"burst": 5, "maxSubscriptions": null}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "suspended"
    assert patched.json()["quotas"] == {
        "maxSubscriptions": None,
        "maxResourcePools": None,
        "requestsPerSecond": None,
        "burst": 5,
    }
    assert (await http.get(f"{API}/tenants/smo-a")).json() == patched.json()
    directory_copy = await gateway.directory.tenant("smo-a")
    assert directory_copy is not None and directory_copy.status == "suspended"

    deleted = await http.delete(f"{API}/tenants/smo-a")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await http.get(f"{API}/tenants/smo-a")).status_code == 404
    assert await gateway.directory.tenant("smo-a") is None


async def test_merge_patch_nulls_reset_and_a_patch_changing_nothing_keeps_updated_at(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    body = {
        "tenantId": "smo-a",
        "name": "A",
        "description": "first",
        "quotas": {"maxSubscriptions": 1, "burst": 2},
    }
    original = await created(http, "/tenants", body)
    gateway.now += 60
    same = await http.patch(f"{API}/tenants/smo-a", json={"name": "A", "quotas": {"burst": 2}})
    assert same.json() == original
    reset = await http.patch(f"{API}/tenants/smo-a", json={"description": None, "quotas": None})
    assert reset.json()["description"] == ""
    assert set(reset.json()["quotas"].values()) == {None}
    assert reset.json()["updatedAt"] == "2023-11-14T22:14:20.000Z"
    assert reset.json()["createdAt"] == original["createdAt"]


async def test_lists_filter_select_fields_and_page(http: httpx.AsyncClient) -> None:
    for name in ("c", "a", "d", "b", "e"):
        await created(http, "/tenants", {"tenantId": f"t-{name}", "name": name.upper()})
    seen: list[str] = []
    marker: str | None = None
    while True:
        params = {"nextpage_opaque_marker": marker} if marker else {}
        page = (await http.get(f"{API}/tenants", params=params)).json()
        seen += [item["tenantId"] for item in page["items"]]
        marker = page["nextMarker"]
        if marker is None:
            break
    assert seen == ["t-a", "t-b", "t-c", "t-d", "t-e"]
    filtered = await http.get(
        f"{API}/tenants", params={"filter": "(in,name,B,D)", "fields": "tenantId,name"}
    )
    assert filtered.json() == {
        "items": [{"tenantId": "t-b", "name": "B"}, {"tenantId": "t-d", "name": "D"}],
        "nextMarker": None,
    }
    one = await http.get(f"{API}/tenants/t-c", params={"fields": "status"})
    assert one.json() == {"status": "active"}


async def test_users_of_a_tenant(http: httpx.AsyncClient, gateway: Gateway) -> None:
    await created(http, "/tenants", {"tenantId": "smo-a", "name": "A"})
    response = await http.post(
        f"{API}/tenants/smo-a/users", json={"subject": SPIFFE_A, "name": "client"}
    )
    assert response.status_code == 201
    user = response.json()
    assert set(user) == {"userId", "tenantId", "subject", "name", "createdAt"}
    assert (user["tenantId"], user["subject"], user["name"]) == ("smo-a", SPIFFE_A, "client")
    location = f"http://gw.test/o2ims/v1/tenants/smo-a/users/{user['userId']}"
    assert response.headers["location"] == location
    assert (await http.get(location)).json() == user
    listed = await http.get(f"{API}/tenants/smo-a/users")
    assert listed.json() == {"items": [user], "nextMarker": None}
    identity = await gateway.directory.identity([SPIFFE_A])
    assert identity.user is not None and identity.user.user_id == user["userId"]
    assert (await http.delete(location)).status_code == 204
    assert (await http.get(location)).status_code == 404
    assert (await gateway.directory.identity([SPIFFE_A])).user is None


async def test_role_bindings(http: httpx.AsyncClient, gateway: Gateway) -> None:
    await created(http, "/tenants", {"tenantId": "smo-a", "name": "A"})
    response = await http.post(
        f"{API}/roleBindings",
        json={"subject": SPIFFE_A, "role": "tenant-viewer", "tenantId": "smo-a"},
    )
    assert response.status_code == 201
    grant = response.json()
    location = f"http://gw.test/o2ims/v1/roleBindings/{grant['roleBindingId']}"
    assert response.headers["location"] == location
    system = await created(http, "/roleBindings", {"subject": "ops", "role": "viewer"})
    assert system["tenantId"] is None
    assert (await http.get(location)).json() == grant
    listed = (await http.get(f"{API}/roleBindings", params={"filter": "(eq,role,viewer)"})).json()
    assert listed == {"items": [system], "nextMarker": None}
    identity = await gateway.directory.identity([SPIFFE_A])
    assert [b.role for b in identity.bindings] == ["tenant-viewer"]
    assert (await http.delete(location)).status_code == 204
    assert (await http.get(location)).status_code == 404
    assert (await gateway.directory.identity([SPIFFE_A])).bindings == ()


async def test_deleting_a_tenant_deletes_its_users_and_bindings(
    http: httpx.AsyncClient, two_tenants: dict[str, Any]
) -> None:
    assert (await http.delete(f"{API}/tenants/smo-a")).status_code == 204
    bindings = (await http.get(f"{API}/roleBindings")).json()["items"]
    assert {b["roleBindingId"] for b in bindings} == {
        two_tenants["smo-b/binding"]["roleBindingId"],
        two_tenants["system"]["roleBindingId"],
    }
    # the subject is free again
    await created(http, "/tenants", {"tenantId": "smo-a", "name": "again"})
    await created(http, "/tenants/smo-a/users", {"subject": two_tenants["smo-a/user"]["subject"]})


# -- tenant scoping -------------------------------------------------------------------------


async def test_a_tenant_principal_sees_its_own_tenant_only(
    http: httpx.AsyncClient, two_tenants: dict[str, Any]
) -> None:
    mine = as_tenant("smo-a")
    tenants = (await http.get(f"{API}/tenants", headers=mine)).json()
    assert tenants == {"items": [two_tenants["smo-a"]], "nextMarker": None}
    assert (await http.get(f"{API}/tenants/smo-a", headers=mine)).json() == two_tenants["smo-a"]
    users = (await http.get(f"{API}/tenants/smo-a/users", headers=mine)).json()["items"]
    assert users == [two_tenants["smo-a/user"]]
    bindings = (await http.get(f"{API}/roleBindings", headers=mine)).json()["items"]
    assert bindings == [two_tenants["smo-a/binding"]]
    binding_id = two_tenants["smo-a/binding"]["roleBindingId"]
    assert (await http.get(f"{API}/roleBindings/{binding_id}", headers=mine)).status_code == 200


async def test_everything_of_another_tenant_is_404_exactly_like_nothing(
    http: httpx.AsyncClient, two_tenants: dict[str, Any], gateway: Gateway
) -> None:
    mine = as_tenant("smo-a")
    b_user = two_tenants["smo-b/user"]["userId"]
    b_binding = two_tenants["smo-b/binding"]["roleBindingId"]
    system = two_tenants["system"]["roleBindingId"]
    hidden = [
        ("GET", "/tenants/smo-b", None),
        ("PATCH", "/tenants/smo-b", {"name": "mine now"}),
        ("DELETE", "/tenants/smo-b", None),
        ("GET", "/tenants/smo-b/users", None),
        ("POST", "/tenants/smo-b/users", {"subject": "intruder"}),
        ("GET", f"/tenants/smo-b/users/{b_user}", None),
        ("DELETE", f"/tenants/smo-b/users/{b_user}", None),
        ("GET", f"/tenants/smo-a/users/{b_user}", None),
        ("DELETE", f"/tenants/smo-a/users/{b_user}", None),
        ("GET", f"/roleBindings/{b_binding}", None),
        ("DELETE", f"/roleBindings/{b_binding}", None),
        ("GET", f"/roleBindings/{system}", None),
        ("DELETE", f"/roleBindings/{system}", None),
        ("POST", "/tenants", {"tenantId": "smo-c", "name": "C"}),
        ("POST", "/roleBindings", {"subject": "me", "role": "tenant-admin", "tenantId": "smo-b"}),
        ("POST", "/roleBindings", {"subject": "me", "role": "platform-admin"}),
    ]
    ids = (b_user, b_binding, system)
    before = await gateway.store.snapshot()
    for method, path, body in hidden:
        answer = await http.request(method, f"{API}{path}", json=body, headers=mine)
        # the same request about records that do not exist at all
        absent_path, absent_body = (
            _absent(path, ids),
            None if body is None else orjson.loads(_absent(orjson.dumps(body).decode(), ids)),
        )
        nothing = await http.request(method, f"{API}{absent_path}", json=absent_body, headers=mine)
        assert answer.status_code == nothing.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"] == nothing.headers["content-type"] == PROBLEM
        shown, missing = answer.json(), nothing.json()
        assert _absent(shown.pop("instance"), ids) == missing.pop("instance")
        assert _absent(shown["detail"], ids) == missing["detail"]
        assert shown.keys() == missing.keys()
    assert await gateway.store.snapshot() == before


def _absent(text: str, ids: tuple[str, ...]) -> str:
    """``text`` naming tenant smo-z and unused ids instead of smo-b's records."""
    for value in ids:
        text = text.replace(value, "00000000" + value[8:])
    return text.replace("smo-b", "smo-z")


# -- bad requests ---------------------------------------------------------------------------

A_UUID = "0b6f4d7e-1a8c-4c1e-9f0e-2d7b8e9a6c51"

BAD_REQUESTS: list[tuple[str, str, str, Any, int]] = [
    # (case, method, path, body: bytes as is / anything else as JSON, status)
    ("malformed JSON", "POST", "/tenants", b'{"tenantId": "x", ', 400),
    ("malformed merge patch", "PATCH", "/tenants/smo-a", b'{"name": ', 400),
    ("patch not an object", "PATCH", "/tenants/smo-a", ["name"], 400),
    ("empty merge patch body", "PATCH", "/tenants/smo-a", b"", 400),
    ("NaN in a merge patch", "PATCH", "/tenants/smo-a", b'{"quotas": {"burst": NaN}}', 400),
    ("patch of the id", "PATCH", "/tenants/smo-a", {"tenantId": "smo-z"}, 400),
    ("patch of a timestamp", "PATCH", "/tenants/smo-a", {"createdAt": "2020"}, 400),
    ("patch of an unknown member", "PATCH", "/tenants/smo-a", {"colour": "red"}, 400),
    ("patch nulling the name", "PATCH", "/tenants/smo-a", {"name": None}, 400),
    ("patch with a bad status", "PATCH", "/tenants/smo-a", {"status": "gone"}, 400),
    ("patch with a bad quota", "PATCH", "/tenants/smo-a", {"quotas": {"burst": 0}}, 400),
    ("patch with a string quota", "PATCH", "/tenants/smo-a", {"quotas": {"burst": "5"}}, 400),
    ("patch with an unknown quota", "PATCH", "/tenants/smo-a", {"quotas": {"cpu": 1}}, 400),
    (
        "patch with a snake_case quota",
        "PATCH",
        "/tenants/smo-a",
        {"quotas": {"max_subscriptions": 1}},
        400,
    ),
    ("unknown field", "POST", "/tenants", {"tenantId": "smo-c", "name": "C", "colour": 1}, 400),
    ("wrong type", "POST", "/tenants", {"tenantId": "smo-c", "name": 3}, 400),
    ("bad slug", "POST", "/tenants", {"tenantId": "SMO_C", "name": "C"}, 400),
    ("slug too long", "POST", "/tenants", {"tenantId": "a" * 64, "name": "C"}, 400),
    ("reserved shared", "POST", "/tenants", {"tenantId": "shared", "name": "S"}, 400),
    (
        "bad quota",
        "POST",
        "/tenants",
        {"tenantId": "smo-c", "name": "C", "quotas": {"requestsPerSecond": 0}},
        400,
    ),
    (
        "NaN quota",
        "POST",
        "/tenants",
        b'{"tenantId": "smo-c", "name": "C", "quotas": {"requestsPerSecond": NaN}}',
        400,
    ),
    ("null body", "POST", "/tenants", b"null", 400),
    ("bad status", "POST", "/tenants", {"tenantId": "smo-c", "name": "C", "status": "on"}, 400),
    ("missing name", "POST", "/tenants", {"tenantId": "smo-c"}, 400),
    ("duplicate tenant", "POST", "/tenants", {"tenantId": "smo-a", "name": "again"}, 409),
    ("empty subject", "POST", "/tenants/smo-a/users", {"subject": ""}, 400),
    ("subject too long", "POST", "/tenants/smo-a/users", {"subject": "s" * 1025}, 400),
    (
        "user with a tenantId",
        "POST",
        "/tenants/smo-a/users",
        {"subject": "x", "tenantId": "smo-a"},
        400,
    ),
    ("duplicate subject", "POST", "/tenants/smo-a/users", {"subject": SPIFFE_A}, 409),
    ("subject of another tenant", "POST", "/tenants/smo-b/users", {"subject": SPIFFE_A}, 409),
    ("user of an unknown tenant", "POST", "/tenants/smo-z/users", {"subject": "x"}, 404),
    ("unknown role", "POST", "/roleBindings", {"subject": "x", "role": "root"}, 400),
    (
        "tenant role without tenantId",
        "POST",
        "/roleBindings",
        {"subject": "x", "role": "tenant-admin"},
        400,
    ),
    (
        "system role with tenantId",
        "POST",
        "/roleBindings",
        {"subject": "x", "role": "operator", "tenantId": "smo-a"},
        400,
    ),
    (
        "binding of an unknown tenant",
        "POST",
        "/roleBindings",
        {"subject": "x", "role": "tenant-viewer", "tenantId": "smo-z"},
        400,
    ),
    (
        "binding with a bad tenantId",
        "POST",
        "/roleBindings",
        {"subject": "x", "role": "tenant-viewer", "tenantId": "Bad!"},
        400,
    ),
    (
        "duplicate binding",
        "POST",
        "/roleBindings",
        {"subject": SPIFFE_A, "role": "tenant-admin", "tenantId": "smo-a"},
        409,
    ),
    ("bad filter", "GET", "/tenants?filter=(eq,colour,red)", None, 400),
    ("unparsable filter", "GET", "/roleBindings?filter=(eq,role", None, 400),
    ("bad field selection", "GET", "/tenants/smo-a?fields=colour", None, 400),
    ("forged marker", "GET", "/tenants?nextpage_opaque_marker=AAAA", None, 400),
    ("bad user filter", "GET", "/tenants/smo-a/users?filter=(eq,x,1)", None, 400),
    ("invalid tenant id in path", "GET", "/tenants/Not_A_Slug", None, 404),
    ("reserved tenant id in path", "GET", "/tenants/shared", None, 404),
    ("unknown tenant", "GET", "/tenants/smo-z", None, 404),
    ("patch of an unknown tenant", "PATCH", "/tenants/smo-z", {"name": "x"}, 404),
    ("delete of an unknown tenant", "DELETE", "/tenants/smo-z", None, 404),
    ("users of an unknown tenant", "GET", "/tenants/smo-z/users", None, 404),
    ("invalid user id", "GET", "/tenants/smo-a/users/not-a-uuid", None, 404),
    ("unknown user", "DELETE", f"/tenants/smo-a/users/{A_UUID}", None, 404),
    ("invalid binding id", "DELETE", "/roleBindings/x'y", None, 404),
    ("unknown binding", "GET", f"/roleBindings/{A_UUID}", None, 404),
    ("unsupported method", "PUT", "/tenants/smo-a", {"name": "x"}, 405),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_a_bad_request_is_a_problem_and_changes_nothing(
    http: httpx.AsyncClient,
    gateway: Gateway,
    two_tenants: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    before = await gateway.store.snapshot()
    content = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    headers = {"Content-Type": "application/json"} if content is not None else {}
    response = await http.request(method, f"{API}{path}", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status and problem["detail"]
    after: TenancySnapshot = await gateway.store.snapshot()
    assert after == before


async def test_the_unsupported_method_answer_lists_the_allowed_ones(
    http: httpx.AsyncClient,
) -> None:
    response = await http.put(f"{API}/tenants/smo-a", json={})
    assert response.headers["allow"] == "DELETE, GET, PATCH"
