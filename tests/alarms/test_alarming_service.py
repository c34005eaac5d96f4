"""Reads and PATCH of alarm records: every invalid body, 404, 409 for AUTOMATIC alarms,
acknowledge and manual clear with their notifications, If-Match, tenant scoping."""

from __future__ import annotations

import uuid

import orjson
import pytest
from tests.alarms.fakes import WARNING_EVENT, Clock, Rig, drain, make_rig, node, signal

from netweave.alarms.preconditions import PreconditionFailedError
from netweave.alarms.service import AlarmService, parse_modification
from netweave.errors import (
    ConflictError,
    InvalidQueryError,
    InvalidRequestError,
    NotFoundError,
)
from netweave.models.alarms import format_time
from netweave.query import PageMarkers
from netweave.query.listing import FieldSelectionParams, ListQuery
from netweave.store.alarms import AlarmStore, AlarmSubscriptionRecord
from netweave.store.base import Store

ACME_POOL, GLOBEX_POOL = "pool-acme", "pool-globex"


@pytest.fixture
def rig(stores: tuple[Store, AlarmStore], clock: Clock) -> Rig:
    return make_rig(
        *stores,
        clock=clock,
        owners={ACME_POOL: "acme", GLOBEX_POOL: "globex"},
    )


def service(rig: Rig, page_size: int = 100) -> AlarmService:
    return AlarmService(
        rig.alarms,
        notifier=rig.notifier,
        scope=rig.scope,
        markers=PageMarkers(b"k" * 32),
        page_size=page_size,
        clock=rig.clock,
        metrics=rig.metrics,
    )


async def raise_alarm(rig: Rig, definition=WARNING_EVENT, *, pool: str | None = None) -> str:
    resource = node()
    if pool is not None:
        rig.pools[resource] = pool
    await rig.engine().apply(signal(resource, definition, at=rig.clock() - 60))
    return (await rig.alarms.active_alarm(f"{resource}/{definition.key}")).alarm_id


async def subscribe(rig: Rig) -> None:
    await rig.alarms.add_subscription(
        AlarmSubscriptionRecord(subscription_id=str(uuid.uuid4()), callback="https://smo/x")
    )


ACK = b'{"alarmAcknowledged": true}'
CLEAR = b'{"perceivedSeverity": 5}'


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"alarmAcknowledged": true, "perceivedSeverity": 5}', "got both"),
        (b"{}", "got neither"),
        (b'{"perceivedSeverity": 3}', "only be set to 5"),
        (b'{"perceivedSeverity": 0}', "only be set to 5"),
        (b'{"perceivedSeverity": "5"}', "only be set to 5"),
        (b'{"perceivedSeverity": 5.0}', "only be set to 5"),
        (b'{"perceivedSeverity": true}', "only be set to 5"),
        (b'{"perceivedSeverity": null}', "only be set to 5"),
        (b'{"alarmAcknowledged": false}', "only be set to true"),
        (b'{"alarmAcknowledged": "true"}', "only be set to true"),
        (b'{"alarmAcknowledged": 1}', "only be set to true"),
        (b'{"alarmAcknowledged": true, "extensions": {}}', "unknown field(s) extensions"),
        (b'{"alarmAcknowledgedTime": "2042-01-01T00:00:00Z"}', "unknown field"),
        (b"[]", "JSON object"),
        (b'"ack"', "JSON object"),
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_invalid_modifications(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        parse_modification(body)
    assert refused.value.status == 400
    assert fragment in refused.value.detail


def test_valid_modifications() -> None:
    assert parse_modification(ACK) == "acknowledge"
    assert parse_modification(CLEAR) == "clear"


async def test_acknowledge(rig: Rig, clock: Clock) -> None:
    await subscribe(rig)
    alarm_id = await raise_alarm(rig)
    await drain(rig.store)
    alarms = service(rig)
    _, tag = await alarms.get(alarm_id, FieldSelectionParams())
    clock.advance(5)
    answer, new_tag = await alarms.modify(alarm_id, ACK, if_match=tag)
    assert answer == {"alarmAcknowledged": True} and new_tag != tag
    body, _ = await alarms.get(alarm_id, FieldSelectionParams())
    record = orjson.loads(body)
    assert record["alarmAcknowledged"] is True
    assert record["alarmAcknowledgedTime"] == record["alarmChangedTime"] == format_time(clock())
    (notification,) = [orjson.loads(d.body) for d in await drain(rig.store)]
    assert notification["notificationEventType"] == 3
    assert notification["alarmAcknowledged"] is True
    assert notification["alarmAcknowledgeTime"] == format_time(clock())
    # again: nothing changes, nothing is sent
    assert (await alarms.modify(alarm_id, ACK))[1] == new_tag
    assert await drain(rig.store) == []
    labels = {"definition": "Node warning event", "severity": "warning"}
    assert rig.metrics.registry.get_sample_value("netweave_alarms_acknowledged_total", labels) == 1


async def test_manual_clear(rig: Rig, clock: Clock) -> None:
    await subscribe(rig)
    alarm_id = await raise_alarm(rig)
    await drain(rig.store)
    alarms = service(rig)
    assert (await alarms.modify(alarm_id, CLEAR))[0] == {"perceivedSeverity": 5}
    stored = await rig.alarms.get_alarm(alarm_id)
    assert not stored.active and stored.severity == 5
    assert stored.record.alarm_cleared_time == format_time(clock())
    (notification,) = [orjson.loads(d.body) for d in await drain(rig.store)]
    assert notification["notificationEventType"] == 2 and notification["perceivedSeverity"] == 5
    # clearing a cleared MANUAL alarm: 200, nothing sent
    assert (await alarms.modify(alarm_id, CLEAR))[0] == {"perceivedSeverity": 5}
    assert await drain(rig.store) == []
    # the backend still listing that occurrence does not raise it again
    await rig.engine().apply(signal(stored.record.resource_id, WARNING_EVENT, at=clock() - 30))
    assert await rig.alarms.active_alarms() == {}
    # acknowledging a cleared alarm is allowed
    assert (await alarms.modify(alarm_id, ACK))[0] == {"alarmAcknowledged": True}


async def test_clearing_an_automatic_alarm_is_a_conflict(rig: Rig) -> None:
    from tests.alarms.fakes import NOT_READY

    alarm_id = await raise_alarm(rig, NOT_READY)
    with pytest.raises(ConflictError) as conflict:
        await service(rig).modify(alarm_id, CLEAR)
    assert conflict.value.status == 409 and "AUTOMATIC" in conflict.value.detail
    assert (await rig.alarms.get_alarm(alarm_id)).active  # untouched


async def test_unknown_alarm_and_stale_tag(rig: Rig) -> None:
    alarms = service(rig)
    with pytest.raises(NotFoundError):
        await alarms.modify(str(uuid.uuid4()), ACK)
    with pytest.raises(NotFoundError):
        await alarms.get(str(uuid.uuid4()), FieldSelectionParams())
    alarm_id = await raise_alarm(rig)
    with pytest.raises(PreconditionFailedError) as failed:
        await alarms.modify(alarm_id, ACK, if_match='"999"')
    assert failed.value.status == 412
    assert not (await rig.alarms.get_alarm(alarm_id)).record.alarm_acknowledged
    await alarms.modify(alarm_id, ACK, if_match="*")


async def test_invalid_body_is_refused_before_anything_is_looked_up(rig: Rig) -> None:
    with pytest.raises(InvalidRequestError):
        await service(rig).modify(str(uuid.uuid4()), b'{"perceivedSeverity": 3}')


async def test_tenants_see_the_alarms_of_their_pools_only(rig: Rig) -> None:
    acme = await raise_alarm(rig, pool=ACME_POOL)
    globex = await raise_alarm(rig, pool=GLOBEX_POOL)
    unknown = await raise_alarm(rig)  # its resource's pool is unknown: platform only
    alarms = service(rig)

    async def listed(tenant: str | None) -> set[str]:
        page = await alarms.list(ListQuery(), tenant=tenant)
        return {item["alarmEventRecordId"] for item in orjson.loads(b"[" + page.items + b"]")}

    assert await listed(None) == {acme, globex, unknown}
    assert await listed("acme") == {acme}
    assert await listed("globex") == {globex}
    with pytest.raises(NotFoundError):
        await alarms.get(globex, FieldSelectionParams(), tenant="acme")
    with pytest.raises(NotFoundError):
        await alarms.modify(globex, ACK, tenant="acme")
    assert not (await rig.alarms.get_alarm(globex)).record.alarm_acknowledged
    await alarms.modify(acme, ACK, tenant="acme")


async def test_lists_filter_select_and_page(rig: Rig) -> None:
    from tests.alarms.fakes import NOT_READY

    ids = sorted([await raise_alarm(rig, NOT_READY) for _ in range(3)])
    warning = await raise_alarm(rig)
    alarms = service(rig, page_size=2)
    page = await alarms.list(ListQuery(filter="(eq,perceivedSeverity,0)", fields="resourceID"))
    assert page.total == 3 and page.count == 2 and page.next_marker is not None
    assert all(set(item) == {"resourceID"} for item in orjson.loads(b"[" + page.items + b"]"))
    rest = await alarms.list(
        ListQuery(filter="(eq,perceivedSeverity,0)", fields="resourceID", marker=page.next_marker)
    )
    assert rest.count == 1 and rest.next_marker is None
    only = await alarms.list(ListQuery(filter=f"(eq,alarmEventRecordId,{warning})"))
    assert orjson.loads(only.items)["perceivedSeverity"] == 3
    everything = await service(rig).list(ListQuery())
    listed = [i["alarmEventRecordId"] for i in orjson.loads(b"[" + everything.items + b"]")]
    assert listed == sorted([*ids, warning])
    with pytest.raises(InvalidQueryError):
        await alarms.list(ListQuery(filter="(eq,alarmDefinitionId,x)"))  # spelled ...ID
