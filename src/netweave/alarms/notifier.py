"""Alarm notifications: one ``AlarmEventNotification`` per matching alarm subscription,
written to the gateway's durable outbox (the one inventory notifications use).

A subscription is sent an event when

* the gateway learnt of the event after the subscription was created (no history is
  replayed: an alarm the gateway recorded before the subscription existed is not announced
  as NEW, though its later changes, clear and acknowledgement are; backends stamp changes
  coarsely, so the gateway's own time of learning decides, not the backend's stamp);
* its tenant (if any) may see the alarm's resource (:class:`~.scope.AlarmScope`);
* its filter matches (:mod:`.filters`).

The delivery workers (:mod:`netweave.notifications.delivery`) then POST, sign, retry and
dead-letter them exactly like inventory notifications; the subscription id of a delivery
is the alarm subscription's id (a UUID, never one of an inventory subscription).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import orjson

from netweave.alarms.filters import AlarmFilter, parse_alarm_filter
from netweave.alarms.scope import AlarmScope
from netweave.errors import InvalidQueryError
from netweave.models.alarms import AlarmEventNotification, AlarmEventType
from netweave.observability import tracing
from netweave.observability.logging import get_logger
from netweave.store.alarms import AlarmStore, AlarmSubscriptionRecord, StoredAlarm
from netweave.store.base import Delivery, Outbox

__all__ = ["MONITORING_ROOT", "AlarmNotifier", "alarm_notification", "alarm_ref"]

#: the standard monitoring API below the apiRoot
MONITORING_ROOT = "/o2ims-infrastructureMonitoring/v1"

_log = get_logger("netweave.alarms.notifier")


def alarm_ref(api_root: str, alarm_id: str) -> str:
    """The absolute URL of an alarm record (``objectRef``)."""
    return f"{api_root.rstrip('/')}{MONITORING_ROOT}/alarms/{quote(alarm_id, safe='')}"


def alarm_notification(
    alarm: StoredAlarm,
    event_type: AlarmEventType,
    *,
    global_cloud_id: str,
    api_root: str,
    consumer_subscription_id: str | None,
) -> bytes:
    """The JSON body of one notification of ``event_type`` about ``alarm`` (as it is now)."""
    record = alarm.record
    notification = AlarmEventNotification(
        global_cloud_id=global_cloud_id,
        consumer_subscription_id=consumer_subscription_id,
        notification_event_type=event_type,
        object_ref=alarm_ref(api_root, record.alarm_event_record_id),
        alarm_event_record_id=record.alarm_event_record_id,
        resource_type_id=record.resource_type_id,
        resource_id=record.resource_id,
        alarm_definition_id=record.alarm_definition_id,
        probable_cause_id=record.probable_cause_id,
        alarm_raised_time=record.alarm_raised_time,
        alarm_changed_time=record.alarm_changed_time or record.alarm_raised_time,
        alarm_acknowledge_time=record.alarm_acknowledged_time,
        alarm_acknowledged=record.alarm_acknowledged,
        perceived_severity=record.perceived_severity,
        extensions=record.extensions,
    )
    return orjson.dumps(notification.model_dump(mode="json", by_alias=True, exclude_none=True))


@dataclass(frozen=True, slots=True)
class _Subscriber:
    record: AlarmSubscriptionRecord
    filter: AlarmFilter


class AlarmNotifier:
    def __init__(
        self,
        store: AlarmStore,
        outbox: Outbox,
        *,
        scope: AlarmScope,
        api_root: str,
        global_cloud_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._scope = scope
        self._api_root = api_root
        self._global_cloud_id = global_cloud_id
        self._clock = clock
        self._generation: int | None = None
        self._subscribers: list[_Subscriber] = []

    async def notify(
        self, alarm: StoredAlarm, event_type: AlarmEventType, *, event_time: float
    ) -> int:
        """Enqueue the notifications of one event (``alarm`` is the record after it, the
        event happened at ``event_time``); how many were enqueued.  The deliveries carry
        the current span's ``traceparent`` (the alarm engine's span, tracing on)."""
        subscribers = await self._current_subscribers()
        with tracing.child_span("alarm match", kind=tracing.SpanKind.INTERNAL):
            matched = self._matching(subscribers, alarm, event_type, event_time)
        traceparent = tracing.traceparent()
        deliveries = []
        for record in matched:
            notification_id = str(uuid.uuid4())
            body = alarm_notification(
                alarm,
                event_type,
                global_cloud_id=self._global_cloud_id,
                api_root=self._api_root,
                consumer_subscription_id=record.consumer_subscription_id,
            )
            deliveries.append(
                Delivery(
                    subscription_id=record.subscription_id,
                    notification_id=notification_id,
                    callback=record.callback,
                    body=body,
                    event_time=self._clock(),
                    traceparent=traceparent,
                )
            )
        if deliveries:
            await self._outbox.enqueue(deliveries)
        return len(deliveries)

    def _matching(
        self,
        subscribers: list[_Subscriber],
        alarm: StoredAlarm,
        event_type: AlarmEventType,
        event_time: float,
    ) -> list[AlarmSubscriptionRecord]:
        """The subscriptions to notify of the event, in order."""
        wire = alarm.wire()
        # "raised after it subscribed" is judged by when the gateway learnt of the event:
        # backends stamp their changes coarsely (Kubernetes to the second), and an event the
        # gateway processes after a subscription exists is news to that subscriber
        observed = max(event_time, self._clock())
        matched = []
        for subscriber in subscribers:
            record = subscriber.record
            if observed < record.created_at:
                continue
            if record.tenant is not None and not self._scope.sees(record.tenant, alarm):
                continue
            if not subscriber.filter.matches(wire, event_type):
                continue
            matched.append(record)
        return matched

    async def _current_subscribers(self) -> list[_Subscriber]:
        generation = await self._store.subscriptions_generation()
        if generation != self._generation:
            subscribers = []
            for record in await self._store.list_subscriptions():
                try:
                    parsed = parse_alarm_filter(record.filter)
                except InvalidQueryError:  # stored before a stricter parser: never matches
                    _log.warning(
                        "alarm subscription filter no longer parses; it is not notified",
                        subscription_id=record.subscription_id,
                    )
                    continue
                subscribers.append(_Subscriber(record, parsed))
            self._subscribers = subscribers
            self._generation = generation
        return self._subscribers
