"""The catalogue of docs/metrics.md against a live gateway's scrape, after a real workload.

One token-secured gateway over the simulated O-Cloud, with Redis as its store and a
separate metrics port, serves a scripted workload through real HTTP: reads, a bad
request, refusals of every kind the workload can cause (no token, a bad token, a role
without the permission, a suspended tenant, a rate-limited tenant), three subscriptions
(platform and tenant) whose webhook receivers accept, fail then refuse, simulated churn
to notify, and finally the backend going away (its watch stream ends).  Then the scrape
must hold every catalogued metric with exactly the documented labels and values the
workload implies, and nothing uncatalogued.
"""

from __future__ import annotations

import asyncio
import platform
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import yaml
from tests.credentials import AUDIENCE, ISSUER, TokenIssuer
from tests.observability.catalogue import Entry, Family, catalogue, sample_labels, scrape_families
from tests.observability.promtool import promtool
from tests.servers import RunningGateway, free_port, serve_gateway
from tests.waiting import eventually
from tests.webhooks import Receiver, Reply, running_receiver

from netweave import __version__

V1 = "/o2ims-infrastructureInventory/v1"
POOLS = f"{V1}/resourcePools"
SUBS = f"{V1}/subscriptions"
ALARMS = "/o2ims-infrastructureMonitoring/v1/alarms"
SEVERITIES = {"critical", "major", "minor", "warning", "indeterminate"}

TENANCY = {
    "tenants": [
        {"tenantId": "smo-a", "name": "SMO A"},
        {"tenantId": "smo-s", "name": "Suspended SMO", "status": "suspended"},
        {"tenantId": "smo-r", "name": "Slow SMO", "quotas": {"requestsPerSecond": 0.2, "burst": 1}},
    ],
    "users": [
        {"tenantId": "smo-a", "subject": "smo-a-client"},
        {"tenantId": "smo-s", "subject": "smo-s-client"},
        {"tenantId": "smo-r", "subject": "smo-r-client"},
    ],
    "roleBindings": [
        {"subject": "smo-a-client", "role": "tenant-admin", "tenantId": "smo-a"},
        {"subject": "smo-s-client", "role": "tenant-admin", "tenantId": "smo-s"},
        {"subject": "smo-r-client", "role": "tenant-viewer", "tenantId": "smo-r"},
        {"subject": "ops", "role": "platform-admin"},
        {"subject": "noc", "role": "viewer"},
    ],
}


@dataclass
class Scrapes:
    main: str  # GET /metrics on the API port
    metrics_port: str  # GET /metrics on NETWEAVE_METRICS_PORT


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> TokenIssuer:
    return TokenIssuer(tmp_path_factory.mktemp("idp") / "signing.pem")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(
    issuer: TokenIssuer,
    redis_url: str,
    module_redis_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningGateway]:
    tenancy = tmp_path_factory.mktemp("tenancy") / "tenancy.yaml"
    tenancy.write_text(yaml.safe_dump(TENANCY))
    with serve_gateway(
        access_log=False,
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_key_files=str(issuer.key_file),
        tenancy_file=tenancy,
        simulated_pool_owners={"mad-ran-edge": "smo-a"},
        callback_allowlist="127.0.0.1",
        callback_verify=False,
        redis_url=redis_url,
        store_prefix=module_redis_prefix,
        metrics_port=free_port(),
    ) as running:
        yield running


def scrape(gateway: RunningGateway, *, port: int | None = None) -> str:
    url = f"http://127.0.0.1:{port}/metrics" if port else f"{gateway.base_url}/metrics"
    response = httpx.get(url, trust_env=False, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def family(gateway: RunningGateway, name: str) -> Family:
    return scrape_families(scrape(gateway))[name]


def in_gateway_loop(gateway: RunningGateway, make: Callable[[], object]) -> None:
    """Run a coroutine (or a plain call) in the gateway's own event loop."""
    loop: asyncio.AbstractEventLoop = gateway.app.state.loop

    async def step() -> None:
        result = make()
        if asyncio.iscoroutine(result):
            await result

    asyncio.run_coroutine_threadsafe(step(), loop).result(timeout=10)


def reads_and_refusals(http: httpx.Client, issuer: TokenIssuer) -> None:
    ops = issuer.headers("ops")
    # the same page three times (rendered once, then from the cache), then a bad filter
    for _ in range(3):
        assert http.get(POOLS, headers=ops).status_code == 200
    assert http.get(POOLS, params={"filter": "(eq,nosuch,1)"}, headers=ops).status_code == 400
    assert http.get(POOLS).status_code == 401
    assert http.get(POOLS, headers={"Authorization": "Bearer no.such.token"}).status_code == 401
    denied = http.post(SUBS, json={"callback": "http://127.0.0.1/x"}, headers=issuer.headers("noc"))
    assert denied.status_code == 403
    assert http.get(POOLS, headers=issuer.headers("smo-s-client")).status_code == 403
    slow = issuer.headers("smo-r-client")
    assert [http.get(POOLS, headers=slow).status_code for _ in range(2)] == [200, 429]


def notifications(
    gateway: RunningGateway, http: httpx.Client, issuer: TokenIssuer, receiver: Receiver
) -> None:
    """Two platform subscriptions (one subscriber fails, then refuses), one of smo-a, churn."""
    ops = issuer.headers("ops")
    run = uuid.uuid4().hex
    accepting = receiver.script(f"/ok/{run}")
    refusing = receiver.script(f"/gone/{run}", Reply(503), then=Reply(410))
    tenants = receiver.script(f"/tenant/{run}")
    for callback, headers in [
        (accepting, ops),
        (refusing, ops),
        (tenants, issuer.headers("smo-a-client")),
    ]:
        created = http.post(SUBS, json={"callback": callback}, headers=headers)
        assert created.status_code == 201, created.text
    adapter = gateway.app.state.view._adapter
    in_gateway_loop(gateway, lambda: [adapter.apply_churn_step() for _ in range(3)])
    eventually(lambda: receiver.received(f"/ok/{run}"), timeout=30)
    eventually(lambda: len(receiver.received(f"/gone/{run}")) >= 2, timeout=30)
    eventually(lambda: family(gateway, "netweave_deliveries_dead_lettered").values(), timeout=30)


def an_alarm(gateway: RunningGateway, http: httpx.Client, issuer: TokenIssuer) -> None:
    """A node goes not ready (a critical alarm), an operator acknowledges it, it recovers."""
    ops = issuer.headers("ops")
    pool = http.get(POOLS, headers=ops).json()[0]["resourcePoolId"]
    node = http.get(f"{POOLS}/{pool}/resources", headers=ops).json()[0]["resourceId"]
    adapter = gateway.app.state.view._adapter
    in_gateway_loop(gateway, lambda: adapter.set_condition(node, "node-not-ready", True))

    def critical_alarms() -> list[dict[str, object]]:
        query = {"filter": f"(eq,perceivedSeverity,0);(eq,resourceID,{node})"}
        answer = http.get(ALARMS, params=query, headers=ops)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, object]] = answer.json()
        return found

    alarm = eventually(critical_alarms, timeout=30)[0]
    acknowledged = http.patch(
        f"{ALARMS}/{alarm['alarmEventRecordId']}",
        content=b'{"alarmAcknowledged": true}',
        headers={**ops, "Content-Type": "application/merge-patch+json"},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    in_gateway_loop(gateway, lambda: adapter.set_condition(node, "node-not-ready", False))
    eventually(lambda: family(gateway, "netweave_alarms_cleared").values(), timeout=30)


def backend_goes_away(gateway: RunningGateway) -> None:
    """The adapter closes: the view's watch stream ends and it keeps re-subscribing."""
    in_gateway_loop(gateway, gateway.app.state.view._adapter.aclose)
    eventually(
        lambda: family(gateway, "netweave_backend_watch_restarts").value(cause="ended") >= 1,
        timeout=30,
    )


def run_workload(gateway: RunningGateway, issuer: TokenIssuer, receiver: Receiver) -> None:
    with httpx.Client(base_url=gateway.base_url, timeout=10, trust_env=False) as http:
        reads_and_refusals(http, issuer)
        notifications(gateway, http, issuer, receiver)
        an_alarm(gateway, http, issuer)
    backend_goes_away(gateway)


@pytest.fixture(scope="module")
def scrapes(gateway: RunningGateway, issuer: TokenIssuer, receiver: Receiver) -> Scrapes:
    run_workload(gateway, issuer, receiver)
    port = gateway.settings.metrics_port
    assert port is not None
    return Scrapes(main=scrape(gateway), metrics_port=scrape(gateway, port=port))


# What the workload implies, metric by metric ----------------------------------------------


def _total(f: Family, **labels: str) -> float:
    return sum(f.values(**labels))


def _http_requests(f: Family) -> bool:
    get_pools = {"route": POOLS, "method": "GET"}
    return (
        f.value(**get_pools, status="200") >= 4
        and f.value(**get_pools, status="400") == 1
        and _total(f, status="401") == 2
        and _total(f, status="403") == 2
        and _total(f, status="429") == 1
        and f.value(route=SUBS, method="POST", status="201") == 3
    )


#: for each catalogued metric, what its series must say after the workload
EXPECTED: dict[str, Callable[[Family], bool]] = {
    "netweave_build_info": lambda f: (
        f.value(version=__version__, python=platform.python_version(), backend="simulated") == 1
    ),
    "netweave_http_requests_total": _http_requests,
    "netweave_http_request_duration_seconds": lambda f: f.value(route=POOLS, method="GET") >= 5,
    "netweave_inventory_view_objects": lambda f: (
        f.value(kind="ResourceInfo") > 0 and f.value(kind="ResourcePoolInfo") > 0
    ),
    "netweave_inventory_view_ready": lambda f: f.value(backend="simulated") == 1,
    "netweave_inventory_view_resyncs_total": lambda f: f.value(backend="simulated") >= 1,
    "netweave_inventory_events_total": lambda f: _total(f) >= 1,
    "netweave_backend_watch_up": lambda f: f.value(backend="simulated") == 0,
    "netweave_backend_watch_items_total": lambda f: (
        f.value(kind="snapshot") >= 1 and f.value(kind="event") >= 1
    ),
    "netweave_backend_watch_errors_total": lambda f: (
        [f.value(kind=kind) for kind in ("unavailable", "rejected", "unexpected")] == [0, 0, 0]
    ),
    "netweave_backend_watch_restarts_total": lambda f: (
        f.value(cause="ended") >= 1 and f.value(cause="error") == 0 and f.value(cause="resync") == 0
    ),
    "netweave_inventory_cache_lookups_total": lambda f: (
        f.value(result="hit") >= 2 and f.value(result="miss") >= 1
    ),
    "netweave_subscriptions": lambda f: f.value(tenant="") == 2 and f.value(tenant="smo-a") == 1,
    "netweave_notifications_enqueued_total": lambda f: f.value() >= 2,
    "netweave_notifications_dropped_total": lambda f: f.value() == 0,
    "netweave_notification_emitter": lambda f: f.value() == 1,
    "netweave_deliveries_attempted_total": lambda f: f.value() >= 3,
    "netweave_deliveries_succeeded_total": lambda f: f.value() >= 1,
    "netweave_deliveries_failed_total": lambda f: (
        f.value(reason="http_5xx") >= 1 and f.value(reason="http_4xx") >= 1
    ),
    "netweave_deliveries_retried_total": lambda f: f.value() >= 1,
    "netweave_deliveries_dead_lettered_total": lambda f: (
        f.value(reason="http_4xx", cause="permanent") >= 1
    ),
    "netweave_delivery_latency_seconds": lambda f: f.value() >= 1,
    "netweave_deliveries_in_flight": lambda f: f.value() >= 0,
    "netweave_outbox_depth": lambda f: f.value() >= 0,
    "netweave_auth_failures_total": lambda f: (
        all(
            f.value(reason=reason) >= 1
            for reason in (
                "missing_credentials",
                "invalid_token",
                "forbidden",
                "tenant_refused",
                "rate_limited",
            )
        )
        and f.value(reason="invalid_certificate") == 0
        and f.value(reason="unavailable") == 0
    ),
    "netweave_alarms_raised_total": lambda f: _total(f, severity="critical") >= 1,
    "netweave_alarms_cleared_total": lambda f: _total(f, severity="critical") >= 1,
    "netweave_alarms_acknowledged_total": lambda f: _total(f, severity="critical") == 1,
    "netweave_alarms_active": lambda f: (
        {s.labels["severity"] for s in f.samples} == SEVERITIES
        and all(s.value >= 0 for s in f.samples)
    ),
}


# The tests ------------------------------------------------------------------------------------


def test_the_catalogue_is_well_formed() -> None:
    entries = catalogue()
    assert len(entries) >= 25
    assert all(name.startswith("netweave_") for name in entries)
    assert all(entry.meaning for entry in entries.values())


def test_every_catalogued_metric_is_exposed_with_exactly_its_labels(scrapes: Scrapes) -> None:
    families = scrape_families(scrapes.main)
    for name, entry in catalogue().items():
        assert entry.family in families, f"{name} is catalogued but not exposed"
        exposed = families[entry.family]
        assert exposed.type == entry.type, f"{name}: {exposed.type}, documented {entry.type}"
        assert exposed.samples, f"{name} has no series after the workload"
        for labels in sample_labels(exposed):
            assert labels == entry.labels, f"{name}: labels {sorted(labels)}"


def test_every_exposed_metric_is_catalogued(scrapes: Scrapes) -> None:
    documented = {entry.family for entry in catalogue().values()}
    undocumented = set(scrape_families(scrapes.main)) - documented
    assert not undocumented, f"add these to docs/metrics.md: {sorted(undocumented)}"


@pytest.mark.parametrize("entry", catalogue().values(), ids=lambda entry: entry.name)
def test_the_workload_moved_the_metric(scrapes: Scrapes, entry: Entry) -> None:
    assert entry.name in EXPECTED, f"say what the workload does to {entry.name}"
    exposed = scrape_families(scrapes.main)[entry.family]
    assert EXPECTED[entry.name](exposed), f"{entry.name}: {exposed.samples}"


def test_every_expectation_is_of_a_catalogued_metric() -> None:
    assert set(EXPECTED) <= set(catalogue())


def test_promtool_accepts_the_exposition(scrapes: Scrapes) -> None:
    checked = promtool("check", "metrics", stdin=scrapes.main)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == ""  # no lint warnings either


def test_the_metrics_port_serves_the_same_registry(scrapes: Scrapes) -> None:
    main = scrape_families(scrapes.main)
    separate = scrape_families(scrapes.metrics_port)
    assert {(f.name, f.type) for f in main.values()} == {
        (f.name, f.type) for f in separate.values()
    }
    for name in ("netweave_build_info", "netweave_subscriptions", "netweave_auth_failures"):
        assert main[name].samples == separate[name].samples
