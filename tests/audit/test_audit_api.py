"""GET /o2ims/v1/audit/events through a small FastAPI app, over memory and Redis logs.

A tiny middleware stands in for the gateway's authentication: the ``x-test-tenant``
header makes the request's principal a tenant admin of that tenant, ``platform`` a
platform admin, and no header leaves no principal at all (platform scope).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.audit.records import make_record
from tests.redisserver import redis_server

from netweave.api.audit import router
from netweave.api.problems import install_problem_handlers
from netweave.query import PageMarkers
from netweave.security.audit import AuditLog, AuditRecord, AuditTrail
from netweave.security.principal import Principal
from netweave.store.audit import RedisAuditLog

EVENTS = "/o2ims/v1/audit/events"
PROBLEM = "application/problem+json"


class PrincipalFromHeader:
    """Sets ``scope["netweave.principal"]`` from the ``x-test-tenant`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            tenant = headers.get(b"x-test-tenant")
            if tenant == b"platform":
                scope["netweave.principal"] = principal(None)
            elif tenant is not None:
                scope["netweave.principal"] = principal(tenant.decode())
        await self.app(scope, receive, send)


def principal(tenant: str | None) -> Principal:
    role = "platform-admin" if tenant is None else "tenant-admin"
    return Principal(
        subject=f"admin-of-{tenant}",
        tenant=tenant,
        roles=frozenset({role}),
        auth=frozenset({"token"}),
    )


def build_app(trail: AuditTrail) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    app.add_middleware(PrincipalFromHeader)
    app.state.audit = trail
    return app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://audit.test")


@pytest.fixture
def records() -> list[AuditRecord]:
    """Eight records a second apart: tenants a, b and platform; some denied."""
    plan: list[tuple[str | None, str, int]] = [
        ("smo-a", "success", 201),
        ("smo-b", "denied", 403),
        ("smo-a", "denied", 403),
        (None, "success", 201),
        ("smo-b", "success", 204),
        ("smo-a", "denied", 401),
        ("smo-a", "failure", 409),
        ("smo-b", "denied", 403),
    ]
    return [
        make_record(float(i), tenant=tenant, outcome=outcome, status=status)
        for i, (tenant, outcome, status) in enumerate(plan)
    ]


@pytest.fixture
async def http(audit_log: AuditLog, records: list[AuditRecord]) -> AsyncIterator[httpx.AsyncClient]:
    for record in records:
        await audit_log.append(record)
    trail = AuditTrail(
        audit_log, retention=86400.0, markers=PageMarkers(b"audit-api-secret"), page_size=2
    )
    async with client_of(build_app(trail)) as client:
        yield client


async def every_page(
    http: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str] | None = None
) -> list[list[dict[str, Any]]]:
    """Each page's items, following nextMarker to the end."""
    pages: list[list[dict[str, Any]]] = []
    marker: str | None = None
    while True:
        query = dict(params) if marker is None else {**params, "nextpage_opaque_marker": marker}
        response = await http.get(EVENTS, params=query, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"items", "nextMarker"}
        pages.append(body["items"])
        marker = body["nextMarker"]
        if marker is None:
            return pages
        assert len(pages) < 20, "paging does not end"


def event_ids(pages: list[list[dict[str, Any]]]) -> list[str]:
    return [item["eventId"] for page in pages for item in page]


def assert_problem(response: httpx.Response, status: int, parameter: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    if parameter is not None:
        assert problem["additionalAttributes"]["parameter"] == parameter
    return problem


async def test_platform_admin_pages_through_every_record_oldest_first(
    http: httpx.AsyncClient, records: list[AuditRecord]
) -> None:
    for headers in (None, {"x-test-tenant": "platform"}):
        pages = await every_page(http, {}, headers)
        assert [len(page) for page in pages] == [2, 2, 2, 2]
        assert event_ids(pages) == [record.event_id for record in records]
    assert pages[0][0] == records[0].wire()


async def test_filter_over_wire_fields_with_paging(
    http: httpx.AsyncClient, records: list[AuditRecord]
) -> None:
    pages = await every_page(http, {"filter": "(eq,outcome,denied);(eq,tenantId,smo-a)"})

    assert event_ids(pages) == [records[2].event_id, records[5].event_id]
    platform_only = await every_page(http, {"filter": "(eq,principal,smo-user);(eq,status,201)"})
    assert event_ids(platform_only) == [records[0].event_id, records[3].event_id]


async def test_field_selection(http: httpx.AsyncClient) -> None:
    response = await http.get(EVENTS, params={"fields": "eventId,outcome"})
    assert response.status_code == 200
    assert all(set(item) == {"eventId", "outcome"} for item in response.json()["items"])

    response = await http.get(EVENTS, params={"exclude_fields": "detail,authMethods"})
    item = response.json()["items"][0]
    assert "detail" not in item and "authMethods" not in item and "eventId" in item


async def test_tenant_admin_sees_only_its_tenant_whatever_the_filter(
    http: httpx.AsyncClient, records: list[AuditRecord]
) -> None:
    own = {"x-test-tenant": "smo-a"}
    pages = await every_page(http, {}, own)
    assert event_ids(pages) == [r.event_id for r in records if r.tenant_id == "smo-a"]

    for flt in ("(eq,tenantId,smo-b)", "(neq,tenantId,smo-a)", "(eq,outcome,success)"):
        seen = await every_page(http, {"filter": flt}, own)
        items = [item for page in seen for item in page]
        assert all(item["tenantId"] == "smo-a" for item in items), flt
    assert event_ids(await every_page(http, {"filter": "(eq,tenantId,smo-b)"}, own)) == []

    assert event_ids(await every_page(http, {}, {"x-test-tenant": "smo-z"})) == []


async def test_a_marker_of_another_tenant_or_query_is_refused(http: httpx.AsyncClient) -> None:
    first = (await http.get(EVENTS, headers={"x-test-tenant": "smo-b"})).json()
    marker = first["nextMarker"]
    assert marker is not None

    as_other = await http.get(
        EVENTS, params={"nextpage_opaque_marker": marker}, headers={"x-test-tenant": "smo-a"}
    )
    assert_problem(as_other, 400, "nextpage_opaque_marker")
    other_filter = await http.get(
        EVENTS,
        params={"nextpage_opaque_marker": marker, "filter": "(eq,outcome,denied)"},
        headers={"x-test-tenant": "smo-b"},
    )
    assert_problem(other_filter, 400, "nextpage_opaque_marker")


async def test_since_and_until_bound_the_records(
    http: httpx.AsyncClient, records: list[AuditRecord]
) -> None:
    def iso(record: AuditRecord) -> str:
        return record.time  # the record's own time: ISO 8601 with Z

    pages = await every_page(http, {"since": iso(records[2]), "until": iso(records[6])})
    assert event_ids(pages) == [r.event_id for r in records[2:6]]

    naive = datetime.fromtimestamp(records[5].millis / 1000, UTC).replace(tzinfo=None)
    pages = await every_page(http, {"since": naive.isoformat(timespec="milliseconds")})
    assert event_ids(pages) == [r.event_id for r in records[5:]]

    offset = datetime.fromtimestamp(records[7].millis / 1000, UTC).astimezone()
    pages = await every_page(http, {"until": offset.isoformat(timespec="milliseconds")})
    assert event_ids(pages) == [r.event_id for r in records[:7]]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"filter": "(eq,outcome"}, "filter"),
        ({"filter": "(eq,password,x)"}, "filter"),
        ({"fields": "nosuch"}, "fields"),
        ({"nextpage_opaque_marker": "not-a-marker"}, "nextpage_opaque_marker"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-01T00:00:00Z"}, "until"),
        ({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "until"),
    ],
)
async def test_bad_queries_are_400_problem_details(
    http: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    problem = assert_problem(await http.get(EVENTS, params=params), 400, parameter)
    assert problem["instance"] == EVENTS


async def test_too_wide_a_window_is_400_asking_to_narrow_it(
    audit_log: AuditLog, records: list[AuditRecord]
) -> None:
    for record in records:
        await audit_log.append(record)
    trail = AuditTrail(
        audit_log, retention=86400.0, markers=PageMarkers(b"s"), page_size=2, max_scan=5
    )
    async with client_of(build_app(trail)) as client:
        problem = assert_problem(await client.get(EVENTS), 400, None)
        assert "since and until" in problem["detail"]
        narrowed = await client.get(EVENTS, params={"since": records[4].time})
        assert narrowed.status_code == 200


async def test_a_stopped_redis_is_503(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as server:
        client = Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        trail = AuditTrail(
            RedisAuditLog(client, prefix="down"),
            retention=60.0,
            markers=PageMarkers(b"s"),
            page_size=2,
        )
        server.stop()
        try:
            async with client_of(build_app(trail)) as http:
                response = await http.get(EVENTS)
        finally:
            await client.aclose()
    assert_problem(response, 503, None)
    assert "Retry-After" in response.headers
