"""The alarm service configuration (validation, PUT, merge-patch PATCH, If-Match) and the
retention purge it drives (with an injected clock)."""

from __future__ import annotations

import orjson
import pytest
from tests.alarms.fakes import NOT_READY, Clock, make_rig, node, signal

from netweave.alarms.configuration import AlarmConfigurationService, merge_patch
from netweave.alarms.preconditions import PreconditionFailedError
from netweave.alarms.retention import DAY, AlarmRetention
from netweave.errors import InvalidRequestError
from netweave.store.alarms import AlarmStore
from netweave.store.base import Store


@pytest.fixture
def configuration(stores: tuple[Store, AlarmStore]) -> AlarmConfigurationService:
    return AlarmConfigurationService(stores[1], default_retention_days=1)


async def test_the_default_until_written(configuration: AlarmConfigurationService) -> None:
    current, revision = await configuration.get()
    assert current.model_dump(by_alias=True) == {"retentionPeriod": 1, "extensions": {}}
    assert revision == 0
    assert await configuration.retention_days() == 1


def test_the_default_is_at_least_a_day(stores: tuple[Store, AlarmStore]) -> None:
    with pytest.raises(ValueError, match="at least 1 day"):
        AlarmConfigurationService(stores[1], default_retention_days=0)


async def test_put_and_patch(configuration: AlarmConfigurationService) -> None:
    replaced, revision = await configuration.replace(
        b'{"retentionPeriod": 30, "extensions": {"site": "mad", "team": {"a": 1, "b": 2}}}'
    )
    assert replaced.retention_period == 30 and revision == 1
    patched, revision = await configuration.patch(
        b'{"extensions": {"team": {"a": null, "c": 3}, "site": null, "new": true}}'
    )
    assert patched.model_dump(by_alias=True) == {
        "retentionPeriod": 30,
        "extensions": {"team": {"b": 2, "c": 3}, "new": True},
    }
    assert revision == 2
    patched, _ = await configuration.patch(b'{"retentionPeriod": 7}')
    assert patched.retention_period == 7 and patched.extensions["new"] is True
    # a PUT without extensions replaces them with none
    replaced, _ = await configuration.replace(b'{"retentionPeriod": 2}')
    assert replaced.extensions == {}
    assert await configuration.retention_days() == 2


@pytest.mark.parametrize(
    "body",
    [
        b'{"retentionPeriod": 0}',
        b'{"retentionPeriod": -3}',
        b'{"retentionPeriod": "7"}',
        b'{"retentionPeriod": 1.5}',
        b'{"retentionPeriod": 7.0}',
        b'{"retentionPeriod": true}',
        b'{"retentionPeriod": null}',
        b"{}",
        b'{"extensions": {}}',
        b'{"retentionPeriod": 3, "extensions": []}',
        b'{"retentionPeriod": 3, "extensions": "x"}',
        b'{"retentionPeriod": 3, "other": 1}',
        b'{"retention_period": 3}',
        b"[]",
        b"3",
        b"not json",
    ],
)
async def test_invalid_put(configuration: AlarmConfigurationService, body: bytes) -> None:
    await configuration.replace(b'{"retentionPeriod": 4}')
    with pytest.raises(InvalidRequestError):
        await configuration.replace(body)
    assert (await configuration.get())[0].retention_period == 4  # nothing written


@pytest.mark.parametrize(
    "body",
    [
        b'{"retentionPeriod": 0}',
        b'{"retentionPeriod": null}',  # removing a required field
        b'{"retentionPeriod": "2"}',
        b'{"extensions": null, "retentionPeriod": false}',
        b'{"extensions": 5}',
        b'{"other": 1}',
        b"[]",
        b"null",
    ],
)
async def test_invalid_patch(configuration: AlarmConfigurationService, body: bytes) -> None:
    await configuration.replace(b'{"retentionPeriod": 4, "extensions": {"a": 1}}')
    with pytest.raises(InvalidRequestError):
        await configuration.patch(body)
    current, revision = await configuration.get()
    assert current.retention_period == 4 and current.extensions == {"a": 1} and revision == 1


async def test_if_match(configuration: AlarmConfigurationService) -> None:
    with pytest.raises(PreconditionFailedError):
        await configuration.replace(b'{"retentionPeriod": 4}', if_match='"1"')
    _, revision = await configuration.replace(b'{"retentionPeriod": 4}', if_match='"0"')
    with pytest.raises(PreconditionFailedError):
        await configuration.patch(b'{"retentionPeriod": 5}', if_match='"0", "7"')
    await configuration.patch(b'{"retentionPeriod": 5}', if_match=f'"7", "{revision}"')
    assert await configuration.retention_days() == 5


def test_merge_patch_follows_rfc7386() -> None:
    # the examples of RFC 7386 appendix A
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, expected in cases:
        assert merge_patch(target, patch) == expected, (target, patch)


# -- retention ------------------------------------------------------------------------------


async def test_retention_purges_old_cleared_alarms(
    stores: tuple[Store, AlarmStore], clock: Clock
) -> None:
    rig = make_rig(*stores, clock=clock)
    configuration = AlarmConfigurationService(rig.alarms, default_retention_days=1)
    retention = AlarmRetention(rig.alarms, configuration, clock=clock, metrics=rig.metrics)
    engine = rig.engine()
    old_active = signal(node(), NOT_READY, at=clock() - 30 * DAY)
    goes, stays = signal(node(), at=clock() - 60), signal(node(), at=clock() - 60)
    for item in (old_active, goes, stays):
        await engine.apply(item)
    await engine.apply(signal(goes.resource_id, raised=False, at=clock()))
    clock.advance(DAY / 2)
    await engine.apply(signal(stays.resource_id, raised=False, at=clock()))

    assert await retention.purge_once() == 0  # nothing is older than a day yet
    clock.advance(DAY / 2 + 1)
    assert await retention.purge_once() == 1
    remaining = {alarm.key for alarm in await rig.alarms.list_alarms()}
    assert remaining == {old_active.key, stays.key}  # active alarms are never purged
    active = rig.metrics.registry.get_sample_value(
        "netweave_alarms_active", {"severity": "critical"}
    )
    assert active == 1

    # a longer retention keeps the other one past its first day
    await configuration.replace(orjson.dumps({"retentionPeriod": 3}))
    clock.advance(DAY)
    assert await retention.purge_once() == 0
    clock.advance(2 * DAY)
    assert await retention.purge_once() == 1
    assert {alarm.key for alarm in await rig.alarms.list_alarms()} == {old_active.key}


def test_retention_interval_must_be_positive(stores: tuple[Store, AlarmStore]) -> None:
    configuration = AlarmConfigurationService(stores[1], default_retention_days=1)
    with pytest.raises(ValueError, match="positive"):
        AlarmRetention(stores[1], configuration, interval=0)
