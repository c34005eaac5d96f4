"""The monitoring API over real HTTP: a gateway on loopback whose backend's alarms come
from a controllable source, real webhook receivers, and (for a restart) a real Redis.

The simulated adapter is the backend; its alarm source is replaced by a
:class:`~tests.alarms.fakes.FakeAlarmSource` attached to the adapter instance the gateway
builds, so every test decides exactly which alarms exist.  Each raised alarm carries its
source key in its extensions, so a test finds its own records among the others'.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.alarms.fakes import (
    NOT_READY,
    WARNING_EVENT,
    FakeAlarmSource,
    cleared,
    dictionaries,
    signal,
)
from tests.alarms.spec_shapes import assert_shape
from tests.servers import RunningGateway, serve_gateway
from tests.waiting import eventually
from tests.webhooks import Receiver, running_receiver

import netweave.app
from netweave.adapters.alarms import AlarmDefinitionSpec, AlarmSignal
from netweave.notifications import signing

MON = "/o2ims-infrastructureMonitoring"
V1 = f"{MON}/v1"
ALARMS = f"{V1}/alarms"
SUBS = f"{V1}/alarmSubscriptions"
CONFIG = f"{V1}/alarmServiceConfiguration"
INV = "/o2ims-infrastructureInventory/v1"
MERGE = {"content-type": "application/merge-patch+json"}
SECRET = "alarm-signing-key"


@contextlib.contextmanager
def alarming_gateway(source: FakeAlarmSource, **settings: Any) -> Iterator[RunningGateway]:
    """A gateway whose backend's alarms are ``source``'s."""
    build = netweave.app.build_adapter

    def build_with_source(gateway_settings: Any) -> Any:
        adapter = build(gateway_settings)
        adapter.alarm_dictionaries = source.alarm_dictionaries
        adapter.alarm_signals = source.alarm_signals
        return adapter

    defaults: dict[str, Any] = {
        "access_log": False,
        "callback_allowlist": "127.0.0.1",
        "callback_verify_timeout": 0.5,
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(netweave.app, "build_adapter", build_with_source)
        with serve_gateway(**{**defaults, **settings}) as gateway:
            try:
                yield gateway
            finally:
                source.close()


def everything(client: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of a list, following the ``Link: rel="next"`` headers."""
    items: list[dict[str, Any]] = []
    url: str | None = path
    query: dict[str, str] | None = params
    while url is not None:
        response = client.get(url, params=query)
        assert response.status_code == 200, response.text
        assert int(response.headers["x-total-count"]) >= len(response.json())
        items.extend(response.json())
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
        query = None
    return items


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


class Alarms:
    """Raises and clears alarms of the gateway's real resources through the fake source."""

    def __init__(self, client: httpx.Client, source: FakeAlarmSource, resources: list[dict]):
        self.client, self.source, self.resources = client, source, resources
        self.used = 0

    def resource(self) -> dict[str, Any]:
        resource = self.resources[self.used % len(self.resources)]
        self.used += 1
        return resource

    def raise_(
        self,
        definition: AlarmDefinitionSpec = NOT_READY,
        resource: dict[str, Any] | None = None,
        **options: Any,
    ) -> tuple[AlarmSignal, dict[str, Any]]:
        """Raise a new alarm; its signal and its record (once the gateway has it)."""
        resource = resource or self.resource()
        key = f"{resource['resourceId']}/{definition.key}/{uuid.uuid4()}"
        item = signal(
            resource["resourceId"],
            definition,
            resource_type_id=resource["resourceTypeId"],
            key=key,
            extensions={"key": key},
            **options,
        )
        self.source.publish(item)
        return item, self.record(item, lambda _alarm: True)

    def record(self, item: AlarmSignal, condition: Any) -> dict[str, Any]:
        """The record of ``item``'s alarm once ``condition(record)`` holds."""

        def found() -> dict[str, Any] | None:
            listed = everything(
                self.client, ALARMS, filter=f"(eq,extensions/key,'{item.extensions['key']}')"
            )
            return next((a for a in listed if condition(a)), None)

        return eventually(found)


def subscribe(client: httpx.Client, receiver: Receiver, **extra: Any) -> tuple[str, str]:
    """A new alarm subscription; its id and the receiver path it notifies."""
    path = f"/alarms/{uuid.uuid4()}"
    callback = receiver.script(path)
    response = client.post(SUBS, json={"callback": callback, **extra})
    assert response.status_code == 201, response.text
    assert_shape("AlarmSubscriptionInfo", response.json())
    return response.json()["alarmSubscriptionId"], path


def received(receiver: Receiver, path: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` notifications at ``path`` (waits for them)."""
    got = eventually(lambda: len(receiver.received(path)) >= count and receiver.received(path))
    return [orjson.loads(r.body) for r in got]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def source() -> FakeAlarmSource:
    return FakeAlarmSource()


@pytest.fixture(scope="module")
def gateway(source: FakeAlarmSource) -> Iterator[RunningGateway]:
    with alarming_gateway(source, max_page_size=2, notification_secret=SECRET) as running:
        yield running


@pytest.fixture(scope="module")
def client(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=10, trust_env=False) as http:
        yield http


@pytest.fixture(scope="module")
def resources(client: httpx.Client, source: FakeAlarmSource) -> list[dict[str, Any]]:
    """The simulated O-Cloud's resources; the source gets a dictionary per resource type."""
    types = [t["resourceTypeId"] for t in everything(client, f"{INV}/resourceTypes")]
    source.dictionary_specs = dictionaries(*types)
    found: list[dict[str, Any]] = []
    for pool in everything(client, f"{INV}/resourcePools"):
        found.extend(everything(client, f"{INV}/resourcePools/{pool['resourcePoolId']}/resources"))
    assert len(found) >= 6
    return found


@pytest.fixture
def alarms(client: httpx.Client, source: FakeAlarmSource, resources: list[dict]) -> Alarms:
    return Alarms(client, source, resources)


# Versions, methods, the API description -----------------------------------------------


def test_api_versions(client: httpx.Client) -> None:
    for path, prefix in ((f"{MON}/api_versions", MON), (f"{V1}/api_versions", V1)):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {"uriPrefix": prefix, "apiVersions": [{"version": "1.0.0"}]}
        assert_shape("APIVersions", response.json())


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", ALARMS, "GET"),
        ("DELETE", ALARMS, "GET"),
        ("POST", f"{ALARMS}/{uuid.uuid4()}", "GET, PATCH"),
        ("DELETE", f"{ALARMS}/{uuid.uuid4()}", "GET, PATCH"),
        ("PUT", SUBS, "GET, POST"),
        ("PATCH", f"{SUBS}/{uuid.uuid4()}", "DELETE, GET"),
        ("PUT", f"{SUBS}/{uuid.uuid4()}", "DELETE, GET"),
        ("POST", CONFIG, "GET, PATCH, PUT"),
        ("DELETE", CONFIG, "GET, PATCH, PUT"),
        ("POST", f"{V1}/probableCauses", "GET"),
        ("POST", f"{MON}/api_versions", "GET"),
        ("POST", f"{INV}/alarmDictionaries", "GET"),
        ("DELETE", f"{INV}/alarmDictionaries/{uuid.uuid4()}", "GET"),
        ("PUT", f"{INV}/resourceTypes/{uuid.uuid4()}/alarmDictionary", "GET"),
    ],
)
def test_methods_not_allowed(client: httpx.Client, method: str, path: str, allow: str) -> None:
    response = client.request(method, path, json={})
    problem(response, 405)
    assert response.headers["allow"] == allow


def test_openapi_documents_the_surface(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {
        "getAllMonitoringVersions",
        "getMinorMonitoringVersions",
        "getAlarms",
        "getAlarm",
        "patchAlarm",
        "getAlarmSubscriptions",
        "createAlarmSubscription",
        "getAlarmSubscription",
        "deleteAlarmSubscription",
        "getAlarmServiceConfiguration",
        "updateAlarmServiceConfiguration",
        "patchAlarmServiceConfiguration",
        "getProbableCauses",
        "getProbableCause",
        "getAlarmDictionaries",
        "getAlarmDictionary",
        "getResourceTypeAlarmDictionary",
    } <= operations
    patch = spec["paths"][f"{ALARMS}/{{alarmEventRecordId}}"]["patch"]
    assert list(patch["requestBody"]["content"]) == ["application/merge-patch+json"]


# Alarms and their notifications -------------------------------------------------------


def test_an_alarm_from_raise_to_clear(
    client: httpx.Client, receiver: Receiver, alarms: Alarms, gateway: RunningGateway
) -> None:
    consumer = str(uuid.uuid4())
    _, path = subscribe(client, receiver, consumerSubscriptionId=consumer)
    item, record = alarms.raise_(NOT_READY)
    assert_shape("AlarmEventRecord", record)
    assert record["perceivedSeverity"] == 0 and record["resourceID"] == item.resource_id
    one = client.get(f"{ALARMS}/{record['alarmEventRecordId']}")
    assert one.status_code == 200 and one.json() == record and one.headers["etag"]

    alarms.source.publish(signal(item.resource_id, NOT_READY, severity=1, key=item.key))
    alarms.source.publish(cleared(item))
    new, change, clear = received(receiver, path, 3)
    for body in (new, change, clear):
        assert_shape("AlarmEventNotification", body)
        assert body["alarmEventRecordId"] == record["alarmEventRecordId"]
        assert body["consumerSubscriptionId"] == consumer
        assert body["globalCloudID"] == gateway.settings.effective_global_cloud_id
    assert [b["notificationEventType"] for b in (new, change, clear)] == [0, 1, 2]
    assert [b["perceivedSeverity"] for b in (new, change, clear)] == [0, 1, 5]
    assert new["objectRef"] == f"{gateway.base_url}{ALARMS}/{record['alarmEventRecordId']}"
    delivered = receiver.received(path)[0]
    assert delivered.headers["content-type"] == "application/json"
    expected = signing.sign(
        SECRET.encode(),
        timestamp=int(delivered.headers["x-netweave-timestamp"]),
        body=delivered.body,
    )
    assert delivered.headers["x-netweave-signature"] == expected

    final = alarms.record(item, lambda alarm: alarm["perceivedSeverity"] == 5)
    assert_shape("AlarmEventRecord", final)
    assert final["alarmClearedTime"] == final["alarmChangedTime"] == clear["alarmChangedTime"]


def test_lists_filter_select_and_page(client: httpx.Client, alarms: Alarms) -> None:
    item, record = alarms.raise_(WARNING_EVENT)
    for _ in range(2):
        alarms.raise_(NOT_READY)
    listed = everything(client, ALARMS)
    assert len(listed) >= 3
    assert [a["alarmEventRecordId"] for a in listed] == sorted(
        a["alarmEventRecordId"] for a in listed
    )
    first = client.get(ALARMS)
    assert len(first.json()) == 2 and 'rel="next"' in first.headers["link"]
    assert int(first.headers["x-total-count"]) == len(listed)
    warnings = everything(
        client, ALARMS, filter="(eq,perceivedSeverity,3);(eq,alarmAcknowledged,false)"
    )
    assert record["alarmEventRecordId"] in {a["alarmEventRecordId"] for a in warnings}
    assert all(a["perceivedSeverity"] == 3 for a in warnings)
    selected = client.get(
        f"{ALARMS}/{record['alarmEventRecordId']}", params={"fields": "resourceID,extensions/key"}
    )
    assert selected.json() == {"resourceID": item.resource_id, "extensions": {"key": item.key}}
    for bad in ({"filter": "(eq,alarmDefinitionId,x)"}, {"fields": "nosuch"}, {"filter": "(("}):
        problem(client.get(ALARMS, params=bad), 400)
    problem(client.get(ALARMS, params={"nextpage_opaque_marker": "forged"}), 400)
    problem(client.get(f"{ALARMS}/{uuid.uuid4()}"), 404)


def test_only_events_after_subscribing(
    client: httpx.Client, receiver: Receiver, alarms: Alarms
) -> None:
    before, record = alarms.raise_(NOT_READY)
    _, path = subscribe(client, receiver)
    after, _ = alarms.raise_(NOT_READY)
    alarms.source.publish(cleared(before))
    first, second = received(receiver, path, 2)
    assert (first["notificationEventType"], first["extensions"]["key"]) == (0, after.key)
    assert (second["notificationEventType"], second["alarmEventRecordId"]) == (
        2,
        record["alarmEventRecordId"],
    )


def test_subscription_filters(client: httpx.Client, receiver: Receiver, alarms: Alarms) -> None:
    _, clears = subscribe(client, receiver, filter="CLEAR")
    _, critical = subscribe(client, receiver, filter="(eq,perceivedSeverity,0)")
    warning, _ = alarms.raise_(WARNING_EVENT)
    critical_one, _ = alarms.raise_(NOT_READY)
    alarms.source.publish(cleared(warning))
    (clear,) = received(receiver, clears, 1)
    assert clear["extensions"]["key"] == warning.key
    (new,) = received(receiver, critical, 1)
    assert new["extensions"]["key"] == critical_one.key and new["notificationEventType"] == 0


# PATCH -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"alarmAcknowledged": True, "perceivedSeverity": 5},
        {},
        {"perceivedSeverity": 3},
        {"alarmAcknowledged": False},
        {"alarmAcknowledged": True, "unknown": 1},
        [],
    ],
)
def test_patch_refuses_invalid_bodies(client: httpx.Client, alarms: Alarms, body: Any) -> None:
    _, record = alarms.raise_(WARNING_EVENT)
    url = f"{ALARMS}/{record['alarmEventRecordId']}"
    problem(client.patch(url, content=orjson.dumps(body), headers=MERGE), 400)
    assert client.get(url).json() == record  # nothing changed


def test_patch_rules(client: httpx.Client, receiver: Receiver, alarms: Alarms) -> None:
    _, path = subscribe(client, receiver, filter="ACKNOWLEDGE,CLEAR")
    manual_item, manual = alarms.raise_(WARNING_EVENT)
    _, automatic = alarms.raise_(NOT_READY)
    url = f"{ALARMS}/{manual['alarmEventRecordId']}"
    ack = orjson.dumps({"alarmAcknowledged": True})
    clear = orjson.dumps({"perceivedSeverity": 5})

    # the content type: merge-patch only
    problem(client.patch(url, json={"alarmAcknowledged": True}), 415)
    problem(client.patch(url, content=ack, headers={"content-type": "text/plain"}), 415)
    problem(client.patch(url, content=b""), 415)
    # unknown alarm, AUTOMATIC alarm
    problem(client.patch(f"{ALARMS}/{uuid.uuid4()}", content=ack, headers=MERGE), 404)
    conflict = client.patch(
        f"{ALARMS}/{automatic['alarmEventRecordId']}", content=clear, headers=MERGE
    )
    assert "AUTOMATIC" in problem(conflict, 409)["detail"]
    # a stale entity tag
    tag = client.get(url).headers["etag"]
    problem(client.patch(url, content=ack, headers={**MERGE, "if-match": '"999"'}), 412)

    acknowledged = client.patch(url, content=ack, headers={**MERGE, "if-match": tag})
    assert acknowledged.status_code == 200 and acknowledged.json() == {"alarmAcknowledged": True}
    assert_shape("AlarmEventRecordModifications", acknowledged.json())
    assert acknowledged.headers["etag"] != tag
    record = client.get(url).json()
    assert record["alarmAcknowledged"] is True and record["alarmAcknowledgedTime"]

    cleared_now = client.patch(url, content=clear, headers=MERGE)
    assert cleared_now.status_code == 200 and cleared_now.json() == {"perceivedSeverity": 5}
    assert client.get(url).json()["perceivedSeverity"] == 5
    ack_note, clear_note = received(receiver, path, 2)
    assert (ack_note["notificationEventType"], clear_note["notificationEventType"]) == (3, 2)
    assert ack_note["alarmAcknowledgeTime"] == record["alarmAcknowledgedTime"]
    assert {ack_note["alarmEventRecordId"], clear_note["alarmEventRecordId"]} == {
        manual["alarmEventRecordId"]
    }
    # the backend still listing the cleared occurrence does not bring it back
    alarms.source.publish(manual_item)
    problem(client.patch(url, content=b'{"perceivedSeverity": 3}', headers=MERGE), 400)
    assert client.get(url).json()["perceivedSeverity"] == 5


# Alarm subscriptions ---------------------------------------------------------------------


def test_alarm_subscription_crud(client: httpx.Client, receiver: Receiver) -> None:
    consumer = str(uuid.uuid4())
    sid, path = subscribe(client, receiver, consumerSubscriptionId=consumer, filter="NEW")
    one = client.get(f"{SUBS}/{sid}")
    assert one.status_code == 200
    assert one.json() == {
        "alarmSubscriptionId": sid,
        "consumerSubscriptionId": consumer,
        "filter": "NEW",
        "callback": receiver.base_url + path,
    }
    assert one.json() in everything(client, SUBS)
    assert client.get(f"{SUBS}/{sid}", params={"fields": "filter"}).json() == {"filter": "NEW"}
    mine = everything(client, SUBS, filter=f"(eq,alarmSubscriptionId,{sid})")
    assert [s["alarmSubscriptionId"] for s in mine] == [sid]
    duplicate = client.post(SUBS, json={"callback": receiver.base_url + path, "filter": "NEW"})
    assert "already exists" in problem(duplicate, 400)["detail"]
    deleted = client.delete(f"{SUBS}/{sid}")
    assert deleted.status_code == 200 and deleted.content == b""
    problem(client.get(f"{SUBS}/{sid}"), 404)
    problem(client.delete(f"{SUBS}/{sid}"), 404)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "callback"),
        ({"callback": "ftp://127.0.0.1/x"}, "absolute"),
        ({"callback": "http://169.254.169.254/latest/meta-data"}, "internal"),
        ({"callback": "CALLBACK", "filter": "(eq,nosuch,1)"}, "nosuch"),
        ({"callback": "CALLBACK", "filter": "SOMETIMES"}, "filter"),
        ({"callback": "CALLBACK", "consumerSubscriptionId": "nope"}, "UUID"),
        ({"callback": "CALLBACK", "unexpected": 1}, "unexpected"),
        ({"callback": "http://127.0.0.1:9/unreachable"}, "not reachable"),
    ],
)
def test_invalid_alarm_subscriptions(
    client: httpx.Client, receiver: Receiver, body: dict[str, Any], fragment: str
) -> None:
    if body.get("callback") == "CALLBACK":
        body = {**body, "callback": receiver.script(f"/bad/{uuid.uuid4()}")}
    before = len(everything(client, SUBS))
    detail = problem(client.post(SUBS, json=body), 400)["detail"]
    assert fragment in detail
    assert len(everything(client, SUBS)) == before


# Configuration ---------------------------------------------------------------------------


def test_alarm_service_configuration(client: httpx.Client) -> None:
    current = client.get(CONFIG)
    assert current.status_code == 200
    assert_shape("AlarmServiceConfiguration", current.json())
    assert current.json()["retentionPeriod"] >= 1
    tag = current.headers["etag"]

    put = client.put(CONFIG, json={"retentionPeriod": 30, "extensions": {"site": "mad"}})
    assert put.status_code == 200
    assert put.json() == {"retentionPeriod": 30, "extensions": {"site": "mad"}}
    problem(client.put(CONFIG, json={"retentionPeriod": 2}, headers={"if-match": tag}), 412)
    patched = client.patch(
        CONFIG, content=b'{"retentionPeriod": 7, "extensions": {"team": "ran"}}', headers=MERGE
    )
    assert patched.json() == {"retentionPeriod": 7, "extensions": {"site": "mad", "team": "ran"}}
    assert client.get(CONFIG).json() == patched.json()
    assert client.get(CONFIG).headers["etag"] == patched.headers["etag"]
    problem(client.patch(CONFIG, json={"retentionPeriod": 8}), 415)
    for bad in (b'{"retentionPeriod": 0}', b'{"retentionPeriod": "7"}', b'{"x": 1}', b"[1]"):
        problem(client.patch(CONFIG, content=bad, headers=MERGE), 400)
        problem(client.put(CONFIG, content=bad, headers={"content-type": "application/json"}), 400)
    assert client.get(CONFIG).json() == patched.json()  # nothing was written
    restored = client.put(CONFIG, json={"retentionPeriod": 1, "extensions": {}})
    assert restored.status_code == 200


# Dictionaries and probable causes --------------------------------------------------------


def test_alarm_dictionaries(client: httpx.Client, resources: list[dict[str, Any]]) -> None:
    listed = everything(client, f"{INV}/alarmDictionaries")
    types = everything(client, f"{INV}/resourceTypes")
    assert len(listed) == len(types)
    for dictionary in listed:
        assert_shape("AlarmDictionary", dictionary)
    first = listed[0]
    one = client.get(f"{INV}/alarmDictionaries/{first['alarmDictionaryId']}")
    assert one.status_code == 200 and one.json() == first
    type_id = resources[0]["resourceTypeId"]
    of_type = client.get(f"{INV}/resourceTypes/{type_id}/alarmDictionary")
    assert of_type.status_code == 200
    names = {d["alarmName"]: d for d in of_type.json()["alarmDefinition"]}
    assert names["Node warning event"]["clearingType"] == "MANUAL"
    assert names["Node not ready"]["clearingType"] == "AUTOMATIC"
    problem(client.get(f"{INV}/resourceTypes/{uuid.uuid4()}/alarmDictionary"), 404)
    problem(client.get(f"{INV}/alarmDictionaries/{uuid.uuid4()}"), 404)
    fields = client.get(f"{INV}/alarmDictionaries", params={"fields": "vendor"})
    assert all(item == {"vendor": "Example"} for item in fields.json())


def test_probable_causes(client: httpx.Client, alarms: Alarms) -> None:
    _, record = alarms.raise_(NOT_READY)
    causes = everything(client, f"{V1}/probableCauses")
    for cause in causes:
        assert_shape("ProbableCause", cause)
    by_id = {cause["probableCauseId"]: cause for cause in causes}
    assert by_id[record["probableCauseID"]]["name"] == NOT_READY.probable_cause
    one = client.get(f"{V1}/probableCauses/{record['probableCauseID']}")
    assert one.json() == by_id[record["probableCauseID"]]
    problem(client.get(f"{V1}/probableCauses/{uuid.uuid4()}"), 404)


def test_alarm_metrics(client: httpx.Client, alarms: Alarms) -> None:
    alarms.raise_(WARNING_EVENT)
    text = client.get("/metrics").text
    assert (
        'netweave_alarms_raised_total{definition="Node warning event",severity="warning"}' in text
    )
    assert 'netweave_alarms_active{severity="warning"}' in text
    assert "netweave_alarms_cleared_total" in text
    assert "netweave_alarms_acknowledged_total" in text


# A restart on Redis ----------------------------------------------------------------------


def test_a_restart_on_redis_keeps_alarms_and_subscriptions(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    """Records, ids and subscriptions survive a restart; the restarted gateway's first
    snapshot clears what recovered while it was down, and announces nothing twice."""
    from tests.redisserver import running_redis

    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        settings = {"redis_url": url, "store_prefix": f"t{uuid.uuid4().hex[:8]}"}
        first = FakeAlarmSource()
        with (
            alarming_gateway(first, **settings) as gateway,
            httpx.Client(base_url=gateway.base_url, timeout=10, trust_env=False) as http,
        ):
            pools = everything(http, f"{INV}/resourcePools")
            resources = everything(
                http, f"{INV}/resourcePools/{pools[0]['resourcePoolId']}/resources"
            )
            first.dictionary_specs = dictionaries(*{r["resourceTypeId"] for r in resources})
            sid, path = subscribe(http, receiver)
            stays, _ = Alarms(http, first, resources).raise_(NOT_READY, resources[0])
            recovers, _ = Alarms(http, first, resources).raise_(NOT_READY, resources[1])
            received(receiver, path, 2)
            before = {a["alarmEventRecordId"]: a for a in everything(http, ALARMS)}

        second = FakeAlarmSource(first.dictionary_specs, active={stays.key: stays})
        with (
            alarming_gateway(second, **settings) as gateway,
            httpx.Client(base_url=gateway.base_url, timeout=10, trust_env=False) as http,
        ):
            assert everything(http, SUBS)[0]["alarmSubscriptionId"] == sid
            final = Alarms(http, second, []).record(
                recovers, lambda alarm: alarm["perceivedSeverity"] == 5
            )
            after = {a["alarmEventRecordId"]: a for a in everything(http, ALARMS)}
            assert set(after) == set(before)  # the same ids: nothing raised twice
            assert final["alarmEventRecordId"] in before
            *_, clear = received(receiver, path, 3)
            assert clear["notificationEventType"] == 2
            assert clear["alarmEventRecordId"] == final["alarmEventRecordId"]
            assert len(receiver.received(path)) == 3


# Tenancy on a secured gateway ------------------------------------------------------------

OWNERS = {"mad-ran-edge": "smo-a", "mad-core": "smo-b", "dal-storage": "shared"}
TENANCY = {
    "tenants": [
        {"tenantId": "smo-a", "name": "SMO A", "quotas": {"maxSubscriptions": 2}},
        {"tenantId": "smo-b", "name": "SMO B"},
    ],
    "users": [
        {"tenantId": "smo-a", "subject": "smo-a-client"},
        {"tenantId": "smo-a", "subject": "smo-a-reader"},
        {"tenantId": "smo-b", "subject": "smo-b-client"},
    ],
    "roleBindings": [
        {"subject": "smo-a-client", "role": "tenant-admin", "tenantId": "smo-a"},
        {"subject": "smo-a-reader", "role": "tenant-viewer", "tenantId": "smo-a"},
        {"subject": "smo-b-client", "role": "tenant-admin", "tenantId": "smo-b"},
        {"subject": "ops", "role": "platform-admin"},
        {"subject": "noc", "role": "viewer"},
    ],
}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.credentials import TokenIssuer

    return TokenIssuer(tmp_path_factory.mktemp("idp") / "signing.pem")


@pytest.fixture(scope="module")
def tenant_source() -> FakeAlarmSource:
    return FakeAlarmSource()


@pytest.fixture(scope="module")
def secured(
    issuer: Any, tenant_source: FakeAlarmSource, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    import yaml
    from tests.credentials import AUDIENCE, ISSUER

    tenancy = tmp_path_factory.mktemp("tenancy") / "tenancy.yaml"
    tenancy.write_text(yaml.safe_dump(TENANCY))
    with alarming_gateway(
        tenant_source,
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_key_files=str(issuer.key_file),
        tenancy_file=tenancy,
        simulated_pool_owners=OWNERS,
    ) as running:
        yield running


class As:
    """An HTTP client acting as one subject."""

    def __init__(self, http: httpx.Client, issuer: Any, subject: str) -> None:
        self.http, self.headers = http, {"Authorization": f"Bearer {issuer.mint(subject)}"}

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)


@pytest.fixture(scope="module")
def http(secured: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.base_url, timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def by_pool(http: httpx.Client, issuer: Any, tenant_source: FakeAlarmSource) -> dict[str, dict]:
    """One resource of each pool named in OWNERS, by pool name (read as the platform)."""
    ops = As(http, issuer, "ops")
    types = [t["resourceTypeId"] for t in ops.get(f"{INV}/resourceTypes").json()]
    tenant_source.dictionary_specs = dictionaries(*types)
    found = {}
    for pool in ops.get(f"{INV}/resourcePools").json():
        if pool["name"] in OWNERS:
            listed = ops.get(f"{INV}/resourcePools/{pool['resourcePoolId']}/resources").json()
            found[pool["name"]] = listed[0]
    assert set(found) == set(OWNERS)
    return found


def raise_in(http: httpx.Client, issuer: Any, source: FakeAlarmSource, resource: dict) -> dict:
    """Raise a MANUAL alarm on ``resource``; its record as the platform sees it."""
    ops = As(http, issuer, "ops")
    client = httpx.Client(base_url=str(http.base_url), headers=ops.headers, trust_env=False)
    with client:
        return Alarms(client, source, [resource]).raise_(WARNING_EVENT)[1]


def ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {alarm["alarmEventRecordId"] for alarm in response.json()}


def test_tenants_see_the_alarms_of_their_resources(
    http: httpx.Client, issuer: Any, tenant_source: FakeAlarmSource, by_pool: dict[str, dict]
) -> None:
    mine = raise_in(http, issuer, tenant_source, by_pool["mad-ran-edge"])
    theirs = raise_in(http, issuer, tenant_source, by_pool["mad-core"])
    shared = raise_in(http, issuer, tenant_source, by_pool["dal-storage"])
    a, b = As(http, issuer, "smo-a-client"), As(http, issuer, "smo-b-client")
    seen_by_a = ids(a.get(ALARMS))
    assert {mine["alarmEventRecordId"], shared["alarmEventRecordId"]} <= seen_by_a
    assert theirs["alarmEventRecordId"] not in seen_by_a
    assert mine["alarmEventRecordId"] not in ids(b.get(ALARMS))
    assert ids(As(http, issuer, "noc").get(ALARMS)) >= {
        mine["alarmEventRecordId"],
        theirs["alarmEventRecordId"],
    }

    theirs_url = f"{ALARMS}/{theirs['alarmEventRecordId']}"
    problem(a.get(theirs_url), 404)
    ack = orjson.dumps({"alarmAcknowledged": True})
    problem(a.request("PATCH", theirs_url, content=ack, headers=MERGE), 404)
    assert b.get(theirs_url).json()["alarmAcknowledged"] is False
    mine_url = f"{ALARMS}/{mine['alarmEventRecordId']}"
    assert a.request("PATCH", mine_url, content=ack, headers=MERGE).status_code == 200
    # a viewer reads but does not acknowledge
    problem(As(http, issuer, "noc").request("PATCH", theirs_url, content=ack, headers=MERGE), 403)
    problem(http.get(ALARMS), 401)


def test_tenant_alarm_subscriptions(
    http: httpx.Client,
    issuer: Any,
    tenant_source: FakeAlarmSource,
    by_pool: dict[str, dict],
    receiver: Receiver,
) -> None:
    a, b = As(http, issuer, "smo-a-client"), As(http, issuer, "smo-b-client")
    paths = {}
    for who, tenant in ((a, "smo-a"), (b, "smo-b")):
        path = f"/tenant/{tenant}/{uuid.uuid4()}"
        response = who.request("POST", SUBS, json={"callback": receiver.script(path)})
        assert response.status_code == 201, response.text
        paths[tenant] = (response.json()["alarmSubscriptionId"], path)
    a_sub, a_path = paths["smo-a"]
    b_sub, b_path = paths["smo-b"]
    mine = raise_in(http, issuer, tenant_source, by_pool["mad-ran-edge"])
    theirs = raise_in(http, issuer, tenant_source, by_pool["mad-core"])
    shared = raise_in(http, issuer, tenant_source, by_pool["dal-storage"])

    def notified(path: str) -> set[str]:
        got = eventually(lambda: len(receiver.received(path)) >= 2 and receiver.received(path))
        return {orjson.loads(r.body)["alarmEventRecordId"] for r in got}

    assert notified(a_path) == {mine["alarmEventRecordId"], shared["alarmEventRecordId"]}
    assert notified(b_path) == {theirs["alarmEventRecordId"], shared["alarmEventRecordId"]}

    assert [s["alarmSubscriptionId"] for s in a.get(SUBS).json()] == [a_sub]
    problem(b.get(f"{SUBS}/{a_sub}"), 404)
    problem(b.request("DELETE", f"{SUBS}/{a_sub}"), 404)
    assert a.get(f"{SUBS}/{a_sub}").status_code == 200
    platform = {s["alarmSubscriptionId"] for s in As(http, issuer, "ops").get(SUBS).json()}
    assert {a_sub, b_sub} <= platform
    # smo-a may hold two alarm subscriptions
    second = a.request("POST", SUBS, json={"callback": receiver.script("/q/1"), "filter": "NEW"})
    assert second.status_code == 201
    over = a.request("POST", SUBS, json={"callback": receiver.script("/q/2"), "filter": "CLEAR"})
    assert problem(over, 403)["additionalAttributes"] == {
        "quota": "maxSubscriptions",
        "limit": "2",
    }
    # a tenant viewer does not manage alarm subscriptions
    reader = As(http, issuer, "smo-a-reader")
    problem(reader.request("POST", SUBS, json={"callback": receiver.script("/r")}), 403)
    assert reader.get(f"{SUBS}/{a_sub}").status_code == 200


def test_the_configuration_is_the_platforms(http: httpx.Client, issuer: Any) -> None:
    tenant_admin, ops = As(http, issuer, "smo-a-client"), As(http, issuer, "ops")
    assert tenant_admin.get(CONFIG).status_code == 200
    body = {"retentionPeriod": 5, "extensions": {}}
    denied = tenant_admin.request("PUT", CONFIG, json=body)
    assert "tenants:update" in problem(denied, 403)["detail"]
    problem(tenant_admin.request("PATCH", CONFIG, content=b"{}", headers=MERGE), 403)
    assert ops.request("PUT", CONFIG, json=body).json() == body
    assert tenant_admin.get(CONFIG).json() == body
