"""The standard inventory surface over real HTTP: every endpoint, good and bad cases."""

from __future__ import annotations

import uuid

import httpx
import pytest
from tests.api.spec_shapes import assert_shape

INV = "/o2ims-infrastructureInventory"
V1 = f"{INV}/v1"
PROBLEM = "application/problem+json"

LISTS = {
    "resourceTypes": "ResourceType",
    "resourcePools": "ResourcePool",
    "deploymentManagers": "DeploymentManager",
    "locations": "LocationInfo",
    "oCloudSites": "OCloudSiteInfo",
}
ID_OF = {
    "resourceTypes": "resourceTypeId",
    "resourcePools": "resourcePoolId",
    "deploymentManagers": "deploymentManagerId",
    "locations": "globalLocationId",
    "oCloudSites": "oCloudSiteId",
}


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert_shape("ProblemDetails", body)
    assert body["status"] == status
    assert body["detail"]
    return body


def pools(client: httpx.Client) -> list[dict]:
    response = client.get(f"{V1}/resourcePools")
    assert response.status_code == 200
    return response.json()


# Versions and the O-Cloud ------------------------------------------------------------


def test_api_versions_at_the_root_and_under_v1(client: httpx.Client) -> None:
    root = client.get(f"{INV}/api_versions")
    minor = client.get(f"{V1}/api_versions")
    for response, prefix in ((root, INV), (minor, V1)):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert_shape("APIVersions", body)
        assert body["uriPrefix"] == prefix
        assert body["apiVersions"] == [{"version": "1.0.0"}]


def test_ocloud_info_is_spec_shaped_and_configured(client: httpx.Client, gateway) -> None:
    response = client.get(V1)
    assert response.status_code == 200
    body = response.json()
    assert_shape("OCloudInfo", body)
    assert body["oCloudId"] == gateway.settings.effective_ocloud_id
    assert body["globalCloudId"] == body["globalcloudId"]
    assert body["serviceUri"] == gateway.base_url


def test_ocloud_info_field_selection(client: httpx.Client) -> None:
    body = client.get(V1, params={"fields": "name,oCloudId"}).json()
    assert set(body) == {"name", "oCloudId"}
    assert_problem(client.get(V1, params={"fields": "nosuch"}), 400)


# Lists and single objects ------------------------------------------------------------


@pytest.mark.parametrize("collection", sorted(LISTS))
def test_every_list_is_a_bare_array_of_spec_objects(client: httpx.Client, collection: str) -> None:
    response = client.get(f"{V1}/{collection}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body, list) and body
    assert int(response.headers["x-total-count"]) == len(body)
    assert "link" not in response.headers
    for item in body:
        assert_shape(LISTS[collection], item)
    ids = [item[ID_OF[collection]] for item in body]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("collection", sorted(LISTS))
def test_every_object_can_be_fetched_by_id(client: httpx.Client, collection: str) -> None:
    listed = client.get(f"{V1}/{collection}").json()
    for item in listed:
        response = client.get(f"{V1}/{collection}/{item[ID_OF[collection]]}")
        assert response.status_code == 200
        assert response.json() == item


@pytest.mark.parametrize("collection", sorted(LISTS))
def test_unknown_ids_are_404_problems(client: httpx.Client, collection: str) -> None:
    for unknown in (str(uuid.uuid4()), "not-a-uuid", "%20"):
        body = assert_problem(client.get(f"{V1}/{collection}/{unknown}"), 404)
        assert "does not exist" in body["detail"]


def test_the_simulated_ocloud_is_believable(client: httpx.Client) -> None:
    all_pools = pools(client)
    assert len(all_pools) >= 3
    assert len({pool["globalLocationId"] for pool in all_pools}) >= 3
    nodes = [
        node
        for pool in all_pools
        for node in client.get(f"{V1}/resourcePools/{pool['resourcePoolId']}/resources").json()
    ]
    assert len(nodes) >= 24
    types = client.get(f"{V1}/resourceTypes").json()
    classes = {rtype["resourceClass"] for rtype in types}
    assert {"COMPUTE", "STORAGE"} <= classes
    type_ids = {rtype["resourceTypeId"] for rtype in types}
    assert {node["resourceTypeId"] for node in nodes} <= type_ids
    assert len(client.get(f"{V1}/deploymentManagers").json()) == 1


def test_resources_of_a_pool_and_one_resource(client: httpx.Client) -> None:
    pool = pools(client)[0]
    pool_id = pool["resourcePoolId"]
    response = client.get(f"{V1}/resourcePools/{pool_id}/resources")
    assert response.status_code == 200
    resources = response.json()
    assert resources
    for resource in resources:
        assert_shape("Resource", resource)
        assert resource["resourcePoolId"] == pool_id
    one = resources[0]
    got = client.get(f"{V1}/resourcePools/{pool_id}/resources/{one['resourceId']}")
    assert got.status_code == 200
    assert got.json() == one


def test_nested_unknown_ids_are_404(client: httpx.Client) -> None:
    all_pools = pools(client)
    first, second = all_pools[0]["resourcePoolId"], all_pools[1]["resourcePoolId"]
    resource = client.get(f"{V1}/resourcePools/{first}/resources").json()[0]["resourceId"]
    unknown = str(uuid.uuid4())
    assert_problem(client.get(f"{V1}/resourcePools/{unknown}/resources"), 404)
    assert_problem(client.get(f"{V1}/resourcePools/{unknown}/resources/{resource}"), 404)
    assert_problem(client.get(f"{V1}/resourcePools/{first}/resources/{unknown}"), 404)
    # a real resource asked for under the wrong pool does not exist there
    body = assert_problem(client.get(f"{V1}/resourcePools/{second}/resources/{resource}"), 404)
    assert second in body["detail"]


# Filters -----------------------------------------------------------------------------


def test_filter_eq_on_a_top_level_attribute(client: httpx.Client) -> None:
    target = pools(client)[1]
    response = client.get(f"{V1}/resourcePools", params={"filter": f"(eq,name,{target['name']})"})
    assert response.status_code == 200
    assert response.json() == [target]
    assert response.headers["x-total-count"] == "1"


def test_filter_on_nested_extension_paths_and_conjunction(client: httpx.Client) -> None:
    pool = pools(client)[0]
    resources = client.get(f"{V1}/resourcePools/{pool['resourcePoolId']}/resources").json()
    sample = resources[0]
    key, value = next(
        (k, v) for k, v in sample["extensions"].items() if isinstance(v, str) and "'" not in v
    )
    expected = [r for r in resources if r["extensions"].get(key) == value]
    flt = f"(eq,extensions/{key},'{value}');(eq,resourcePoolId,{pool['resourcePoolId']})"
    response = client.get(
        f"{V1}/resourcePools/{pool['resourcePoolId']}/resources", params={"filter": flt}
    )
    assert response.status_code == 200
    assert response.json() == expected


def test_filter_in_nin_neq_and_cont(client: httpx.Client) -> None:
    all_pools = pools(client)
    names = [pool["name"] for pool in all_pools]
    picked = f"(in,name,{names[0]},{names[2]})"
    got = client.get(f"{V1}/resourcePools", params={"filter": picked}).json()
    assert [pool["name"] for pool in got] == [names[0], names[2]]
    got = client.get(f"{V1}/resourcePools", params={"filter": f"(nin,name,{names[0]})"}).json()
    assert names[0] not in [pool["name"] for pool in got] and len(got) == len(names) - 1
    got = client.get(f"{V1}/resourcePools", params={"filter": f"(neq,name,{names[1]})"}).json()
    assert len(got) == len(names) - 1
    fragment = names[0][1:4]
    got = client.get(f"{V1}/resourcePools", params={"filter": f"(cont,name,'{fragment}')"}).json()
    assert all(fragment in pool["name"] for pool in got) and got
    got = client.get(f"{V1}/resourcePools", params={"filter": f"(ncont,name,'{fragment}')"}).json()
    assert all(fragment not in pool["name"] for pool in got)


def test_filter_numeric_comparisons_on_extensions(client: httpx.Client) -> None:
    pool = pools(client)[0]
    url = f"{V1}/resourcePools/{pool['resourcePoolId']}/resources"
    resources = client.get(url).json()
    numeric = next(
        k
        for k, v in resources[0]["extensions"].items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    )
    values = sorted(r["extensions"][numeric] for r in resources if numeric in r["extensions"])
    pivot = values[len(values) // 2]
    for op, check in (
        ("gt", lambda v: v > pivot),
        ("gte", lambda v: v >= pivot),
        ("lt", lambda v: v < pivot),
        ("lte", lambda v: v <= pivot),
    ):
        got = client.get(url, params={"filter": f"({op},extensions/{numeric},{pivot})"}).json()
        expected = [
            r for r in resources if numeric in r["extensions"] and check(r["extensions"][numeric])
        ]
        assert got == expected, op


@pytest.mark.parametrize(
    ("flt", "fragment"),
    [
        ("(eq,nosuch,1)", "nosuch"),
        ("(eq,name/sub,1)", "name"),
        ("(foo,name,1)", "foo"),
        ("(eq,name)", "position"),
        ("(eq,name,a", "position"),
        ("eq,name,a", "position"),
        ("(eq,name,a,b)", "eq"),
        ("(eq,name,'unterminated)", "position"),
        ("", "empty"),
        ("(eq,name,a);", "position"),
        ("(eq,name,a)|(eq,name,b)", "position"),
    ],
)
def test_malformed_or_unknown_filters_are_400_saying_what_and_where(
    client: httpx.Client, flt: str, fragment: str
) -> None:
    body = assert_problem(client.get(f"{V1}/resourcePools", params={"filter": flt}), 400)
    assert fragment in body["detail"]
    assert body["additionalAttributes"]["parameter"] == "filter"


# Field selection ---------------------------------------------------------------------


def test_fields_exclude_fields_all_fields_and_exclude_default(client: httpx.Client) -> None:
    url = f"{V1}/resourcePools"
    full = client.get(url).json()
    only = client.get(url, params={"fields": "name,extensions/country"}).json()
    assert [set(item) <= {"name", "extensions"} for item in only] == [True] * len(full)
    assert all(set(item.get("extensions", {})) <= {"country"} for item in only)
    dropped = client.get(url, params={"exclude_fields": "description,extensions"}).json()
    assert all("description" not in item and "extensions" not in item for item in dropped)
    assert client.get(url, params={"all_fields": ""}).json() == full
    lean = client.get(url, params={"exclude_default": "true"}).json()
    assert all("extensions" not in item and "name" in item for item in lean)
    # exclude_fields wins over fields
    both = client.get(url, params={"fields": "name,description", "exclude_fields": "name"}).json()
    assert all(set(item) == {"description"} for item in both)


def test_field_selection_on_single_objects(client: httpx.Client) -> None:
    pool = pools(client)[0]
    got = client.get(
        f"{V1}/resourcePools/{pool['resourcePoolId']}", params={"fields": "resourcePoolId"}
    ).json()
    assert got == {"resourcePoolId": pool["resourcePoolId"]}


@pytest.mark.parametrize(
    "params",
    [
        {"fields": "nosuch"},
        {"exclude_fields": "name,,description"},
        {"fields": "name/deeper"},
        {"all_fields": "maybe"},
        {"exclude_default": "yes please"},
    ],
)
def test_bad_field_selection_is_400(client: httpx.Client, params: dict) -> None:
    assert_problem(client.get(f"{V1}/resourcePools", params=params), 400)
    pool = pools(client)[0]["resourcePoolId"]
    assert_problem(client.get(f"{V1}/resourcePools/{pool}", params=params), 400)


# Paging ------------------------------------------------------------------------------


def _walk(client: httpx.Client, url: str, params: dict | None = None) -> tuple[list, list[str]]:
    items: list = []
    links: list[str] = []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page) <= 2
        items.extend(page)
        link = response.headers.get("link")
        if link is None:
            return items, links
        links.append(link)
        assert link.startswith("<") and link.endswith('>; rel="next"')
        response = client.get(link[1 : -len('>; rel="next"')])


def test_paging_walks_every_item_exactly_once(
    paged_client: httpx.Client, client: httpx.Client
) -> None:
    everything = client.get(f"{V1}/resourceTypes").json()
    items, links = _walk(paged_client, f"{V1}/resourceTypes")
    assert items == everything
    assert len(links) == (len(everything) - 1) // 2
    first = paged_client.get(f"{V1}/resourceTypes")
    assert first.headers["x-total-count"] == str(len(everything))
    assert "nextpage_opaque_marker=" in first.headers["link"]


def test_paging_keeps_the_filter(paged_client: httpx.Client, client: httpx.Client) -> None:
    pool = pools(client)[0]["resourcePoolId"]
    url = f"{V1}/resourcePools/{pool}/resources"
    flt = {"filter": f"(eq,resourcePoolId,{pool})", "fields": "resourceId,description"}
    expected = client.get(url, params=flt).json()
    items, _ = _walk(paged_client, url, flt)
    assert items == expected and len(items) > 2


def test_forged_foreign_or_garbage_markers_are_400(paged_client: httpx.Client) -> None:
    first = paged_client.get(f"{V1}/resourceTypes")
    marker = httpx.URL(first.headers["link"][1 : -len('>; rel="next"')]).params[
        "nextpage_opaque_marker"
    ]
    flipped = marker[:-2] + ("A" if marker[-2] != "A" else "B") + marker[-1]
    for bad in (flipped, "garbage", "", "é" * 50, marker + "x" * 5000):
        body = assert_problem(
            paged_client.get(f"{V1}/resourceTypes", params={"nextpage_opaque_marker": bad}), 400
        )
        assert body["additionalAttributes"]["parameter"] == "nextpage_opaque_marker"
    # a good marker used for another listing or query is refused too
    assert_problem(
        paged_client.get(f"{V1}/resourcePools", params={"nextpage_opaque_marker": marker}), 400
    )
    assert_problem(
        paged_client.get(
            f"{V1}/resourceTypes",
            params={"nextpage_opaque_marker": marker, "filter": "(neq,name,x)"},
        ),
        400,
    )


# Methods, content types, sizes, unknown paths ----------------------------------------


READ_ONLY = [
    V1,
    f"{V1}/resourceTypes",
    f"{V1}/resourcePools",
    f"{V1}/deploymentManagers",
    f"{INV}/api_versions",
]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", READ_ONLY)
def test_methods_the_spec_does_not_define_are_405_with_allow(
    client: httpx.Client, method: str, path: str
) -> None:
    response = client.request(method, path, json={"name": "x"})
    body = assert_problem(response, 405)
    assert response.headers["allow"] == "GET"
    assert method in body["detail"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_to_single_objects_are_405(client: httpx.Client, method: str) -> None:
    pool = pools(client)[0]["resourcePoolId"]
    resource = client.get(f"{V1}/resourcePools/{pool}/resources").json()[0]["resourceId"]
    rtype = client.get(f"{V1}/resourceTypes").json()[0]["resourceTypeId"]
    dm = client.get(f"{V1}/deploymentManagers").json()[0]["deploymentManagerId"]
    for path in (
        f"{V1}/resourcePools/{pool}",
        f"{V1}/resourcePools/{pool}/resources",
        f"{V1}/resourcePools/{pool}/resources/{resource}",
        f"{V1}/resourceTypes/{rtype}",
        f"{V1}/deploymentManagers/{dm}",
    ):
        response = client.request(method, path)
        assert_problem(response, 405)
        assert response.headers["allow"] == "GET"
    # and nothing changed
    assert client.get(f"{V1}/resourcePools/{pool}").status_code == 200


def test_non_json_bodies_are_415(client: httpx.Client) -> None:
    response = client.post(
        f"{V1}/resourcePools", content=b"name=x", headers={"content-type": "text/plain"}
    )
    body = assert_problem(response, 415)
    assert "text/plain" in body["detail"]
    response = client.post(f"{V1}/resourcePools", content=b"<x/>")  # no content type at all
    assert_problem(response, 415)


def test_oversized_bodies_are_413(client: httpx.Client, gateway) -> None:
    big = b"[" + b"1," * gateway.settings.max_body_bytes + b"1]"
    response = client.post(
        f"{V1}/resourcePools", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


def test_oversized_chunked_bodies_are_413(gateway) -> None:
    limit = gateway.settings.max_body_bytes

    def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    with httpx.Client(base_url=gateway.base_url, trust_env=False, timeout=10) as http:
        response = http.post(
            f"{V1}/resourcePools", content=chunks(), headers={"content-type": "application/json"}
        )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "path", ["/nope", f"{INV}/v9", f"{V1}/nothing", f"{V1}/resourcePools/x/y/z", "/o2ims"]
)
def test_unknown_paths_are_404_problems(client: httpx.Client, path: str) -> None:
    assert_problem(client.get(path), 404)


# Operations hygiene ------------------------------------------------------------------


def test_request_ids_are_returned_and_kept_when_sane(client: httpx.Client) -> None:
    generated = client.get(f"{V1}/resourcePools").headers["x-request-id"]
    assert len(generated) == 32
    kept = client.get(V1, headers={"X-Request-ID": "smo-42.a"}).headers["x-request-id"]
    assert kept == "smo-42.a"
    replaced = client.get(V1, headers={"X-Request-ID": "bad id;" + "x" * 200}).headers[
        "x-request-id"
    ]
    assert len(replaced) == 32
    # errors carry it too
    assert client.get("/nope").headers["x-request-id"]


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_metrics_count_requests_by_route_template(client: httpx.Client) -> None:
    pool = pools(client)[0]["resourcePoolId"]
    client.get(f"{V1}/resourcePools/{pool}")
    client.get(f"{V1}/resourcePools/{uuid.uuid4()}")
    text = client.get("/metrics").text
    template = "/o2ims-infrastructureInventory/v1/resourcePools/{resourcePoolId}"
    assert f'netweave_http_requests_total{{method="GET",route="{template}",status="200"}}' in text
    assert f'netweave_http_requests_total{{method="GET",route="{template}",status="404"}}' in text
    assert "netweave_http_request_duration_seconds_bucket" in text
    assert 'netweave_inventory_view_objects{backend="simulated",kind="ResourceInfo"}' in text
    assert pool not in text  # ids never become label values


def test_openapi_document_and_docs(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    operations = {
        op["operationId"]
        for path in spec["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {
        "getAllInventoryVersions",
        "getMinorInventoryVersions",
        "getCloudInfo",
        "getResourceTypes",
        "getResourceType",
        "getResourcePools",
        "getResourcePool",
        "getResources",
        "getResource",
        "getDeploymentManagers",
        "getDeploymentManager",
    } <= operations
    assert f"{V1}/resourcePools/{{resourcePoolId}}/resources" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
