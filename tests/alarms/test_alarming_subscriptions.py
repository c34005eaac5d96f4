"""Alarm subscriptions: filter parsing and matching, "only events after subscribing",
tenants, the subscription service's checks, and deletion dropping queued notifications."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
from tests.alarms.fakes import NOT_READY, WARNING_EVENT, Clock, Rig, drain, make_rig, node, signal

from netweave.alarms.filters import parse_alarm_filter
from netweave.alarms.subscriptions import AlarmSubscriptionService
from netweave.errors import ForbiddenError, InvalidQueryError, InvalidRequestError, NotFoundError
from netweave.models.alarms import AlarmEventType, AlarmSubscriptionCreate
from netweave.notifications.callbacks import CallbackPolicy
from netweave.query import PageMarkers
from netweave.query.listing import FieldSelectionParams, ListQuery
from netweave.store.alarms import AlarmStore, AlarmSubscriptionRecord
from netweave.store.base import Store

RECORD = {"perceivedSeverity": 0, "alarmAcknowledged": False, "extensions": {"zone": "a"}}


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        (None, {0, 1, 2, 3}),
        ("", {0, 1, 2, 3}),
        ("NEW", {0}),
        ("clear", {2}),
        ("NEW,CLEAR", {0, 2}),
        (" ACKNOWLEDGE ", {3}),
        ("(eq,notificationEventType,1)", {1}),
        ("(in,notificationEventType,0,3)", {0, 3}),
        ("(eq,perceivedSeverity,0)", {0, 1, 2, 3}),
        ("(eq,perceivedSeverity,1)", set()),
        ("(eq,extensions/zone,a);(neq,notificationEventType,2)", {0, 1, 3}),
        ("(eq,perceivedSeverity,4)|(eq,notificationEventType,2)", {2}),
        ("(eq,alarmAcknowledged,false)", {0, 1, 2, 3}),
    ],
)
def test_filters(text: str | None, sent: set[int]) -> None:
    parsed = parse_alarm_filter(text)
    assert {int(t) for t in AlarmEventType if parsed.matches(RECORD, t)} == sent


@pytest.mark.parametrize(
    "text",
    ["NEWS", "NEW,", "(eq,nosuch,1)", "(eq,alarmDefinitionId,x)", "(eq,perceivedSeverity)", "(("],
)
def test_bad_filters(text: str) -> None:
    with pytest.raises(InvalidQueryError) as refused:
        parse_alarm_filter(text)
    assert refused.value.parameter == "filter"


async def add(rig: Rig, created_at: float, **fields: object) -> AlarmSubscriptionRecord:
    record = AlarmSubscriptionRecord(
        subscription_id=str(uuid.uuid4()),
        callback=f"https://smo.example/{uuid.uuid4()}",
        created_at=created_at,
        **fields,  # type: ignore[arg-type]
    )
    await rig.alarms.add_subscription(record)
    return record


def events_of(deliveries, subscription: AlarmSubscriptionRecord) -> list[tuple[int, str]]:
    mine = [d for d in deliveries if d.subscription_id == subscription.subscription_id]
    return [
        (body["notificationEventType"], body["resourceID"])
        for body in (orjson.loads(d.body) for d in mine)
    ]


@pytest.fixture
def rig(stores: tuple[Store, AlarmStore], clock: Clock) -> Rig:
    return make_rig(*stores, clock=clock, owners={"p-acme": "acme", "p-globex": "globex"})


async def test_only_events_after_subscribing(rig: Rig, clock: Clock) -> None:
    engine = rig.engine()
    before = signal(node(), at=clock() - 100)
    await engine.apply(before)
    late = await add(rig, created_at=clock() - 50)
    after = signal(node(), at=clock() - 10)
    await engine.apply(after)
    await engine.apply(signal(before.resource_id, raised=False, at=clock()))
    # the alarm raised before subscribing is not announced, but its clear is
    assert events_of(await drain(rig.store), late) == [
        (0, after.resource_id),
        (2, before.resource_id),
    ]


async def test_filters_and_tenants_select_the_subscribers(rig: Rig, clock: Clock) -> None:
    platform = await add(rig, 0)
    new_only = await add(rig, 0, filter="NEW")
    critical = await add(rig, 0, filter="(eq,perceivedSeverity,0)")
    acme = await add(rig, 0, tenant="acme")
    globex = await add(rig, 0, tenant="globex", filter="CLEAR")
    a, g = node(), node()
    rig.pools.update({a: "p-acme", g: "p-globex"})
    engine = rig.engine()
    await engine.apply(signal(a, NOT_READY, at=clock() - 3))
    await engine.apply(signal(g, WARNING_EVENT, at=clock() - 2))
    await engine.apply(signal(g, WARNING_EVENT, raised=False, at=clock() - 1))
    deliveries = await drain(rig.store)
    assert events_of(deliveries, platform) == [(0, a), (0, g), (2, g)]
    assert events_of(deliveries, new_only) == [(0, a), (0, g)]
    assert events_of(deliveries, critical) == [(0, a)]
    assert events_of(deliveries, acme) == [(0, a)]
    assert events_of(deliveries, globex) == [(2, g)]
    assert {d.callback for d in deliveries if d.subscription_id == acme.subscription_id} == {
        acme.callback
    }


# -- the subscription service ----------------------------------------------------------------


class NoHttp(httpx.AsyncClient):
    """Callback checks are off in these tests: any request is a test failure."""

    async def send(self, *args: object, **kwargs: object) -> httpx.Response:  # type: ignore[override]
        raise AssertionError("the callback must not be called")


@pytest.fixture
async def subscriptions(rig: Rig) -> AlarmSubscriptionService:
    quotas = {"acme": 2}

    async def quota(tenant: str) -> int | None:
        return quotas.get(tenant)

    return AlarmSubscriptionService(
        rig.alarms,
        outbox=rig.store,
        policy=CallbackPolicy.from_allowlist(["127.0.0.1"], verify=False),
        http=NoHttp(),
        markers=PageMarkers(b"k" * 32),
        page_size=10,
        max_subscriptions=quota,
        clock=rig.clock,
    )


def create(callback: str = "http://127.0.0.1:9/alarms", **fields: object):
    return AlarmSubscriptionCreate(callback=callback, **fields)  # type: ignore[arg-type]


async def test_create_list_get_delete(subscriptions: AlarmSubscriptionService) -> None:
    consumer = str(uuid.uuid4())
    created = await subscriptions.create(
        create(consumer_subscription_id=consumer, filter="NEW,CLEAR")
    )
    assert set(created) == {"alarmSubscriptionId", "consumerSubscriptionId", "filter", "callback"}
    sid = created["alarmSubscriptionId"]
    assert orjson.loads(await subscriptions.get(sid, FieldSelectionParams())) == created
    page = await subscriptions.list(ListQuery(filter="(eq,filter,'NEW,CLEAR')"))
    assert orjson.loads(b"[" + page.items + b"]") == [created]
    with pytest.raises(InvalidRequestError, match="same callback and filter"):
        await subscriptions.create(create(filter="NEW,CLEAR"))
    await subscriptions.delete(sid)
    with pytest.raises(NotFoundError):
        await subscriptions.get(sid, FieldSelectionParams())
    with pytest.raises(NotFoundError):
        await subscriptions.delete(sid)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (create(filter="(eq,nosuch,1)"), InvalidQueryError),
        (create(callback="ftp://127.0.0.1/x"), InvalidRequestError),
        (create(callback="http://169.254.169.254/latest"), InvalidRequestError),
        (create(callback="not a url"), InvalidRequestError),
    ],
)
async def test_invalid_subscriptions(
    subscriptions: AlarmSubscriptionService, rig: Rig, request_, error
) -> None:
    with pytest.raises(error):
        await subscriptions.create(request_)
    assert await rig.alarms.list_subscriptions() == []


def test_consumer_id_must_be_a_uuid() -> None:
    with pytest.raises(ValueError, match="UUID"):
        create(consumer_subscription_id="not-a-uuid")
    with pytest.raises(ValueError, match="extra"):
        AlarmSubscriptionCreate.model_validate({"callback": "http://x/", "unexpected": 1})


async def test_tenants_own_their_subscriptions(subscriptions: AlarmSubscriptionService) -> None:
    mine = (await subscriptions.create(create(), tenant="acme"))["alarmSubscriptionId"]
    theirs = (await subscriptions.create(create(), tenant="globex"))["alarmSubscriptionId"]
    page = await subscriptions.list(ListQuery(), tenant="acme")
    assert [s["alarmSubscriptionId"] for s in orjson.loads(b"[" + page.items + b"]")] == [mine]
    with pytest.raises(NotFoundError):
        await subscriptions.get(theirs, FieldSelectionParams(), tenant="acme")
    with pytest.raises(NotFoundError):
        await subscriptions.delete(theirs, tenant="acme")
    assert (await subscriptions.list(ListQuery())).total == 2  # the platform sees both
    # the quota: acme may hold two
    await subscriptions.create(create(filter="NEW"), tenant="acme")
    with pytest.raises(ForbiddenError) as over:
        await subscriptions.create(create(filter="CLEAR"), tenant="acme")
    assert over.value.attributes == {"quota": "maxSubscriptions", "limit": "2"}


async def test_deleting_drops_queued_notifications(
    subscriptions: AlarmSubscriptionService, rig: Rig, clock: Clock
) -> None:
    gone = (await subscriptions.create(create()))["alarmSubscriptionId"]
    stays = (await subscriptions.create(create(filter="NEW")))["alarmSubscriptionId"]
    clock.advance(1)
    for _ in range(3):
        await rig.engine().apply(signal(node(), at=clock()))
    assert await rig.store.depth() == 6
    await subscriptions.delete(gone)
    assert await rig.store.depth() == 3
    assert {d.subscription_id for d in await drain(rig.store)} == {stays}
