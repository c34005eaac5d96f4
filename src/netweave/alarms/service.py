"""The alarm records as the monitoring API serves them: list, get, and PATCH.

Lists take the SOL013 filter, field selection and signed keyset paging of every list
(:mod:`netweave.query.listing`), over the alarm records kept (active ones and cleared ones
within the retention period) that the caller may see (:class:`~.scope.AlarmScope`:
another tenant's alarms answer 404, as if they did not exist).

PATCH (``application/merge-patch+json``, an ``AlarmEventRecordModifications``) does one
of two things, as O2-IMS implementations agree:

* ``{"alarmAcknowledged": true}`` acknowledges the alarm (``alarmAcknowledgedTime`` and
  ``alarmChangedTime`` become now) and sends ACKNOWLEDGE; acknowledging an acknowledged
  alarm changes and sends nothing;
* ``{"perceivedSeverity": 5}`` clears it (CLEAR), but only when its definition's
  clearing type is MANUAL (409 otherwise: the backend clears AUTOMATIC alarms when the
  condition recovers); clearing a cleared alarm changes and sends nothing.

Anything else is 400: both fields, neither, ``alarmAcknowledged: false``, another
severity, an unknown field, a body that is not a JSON object.  The write is a
compare-and-set on the record's revision (its ``ETag``), honouring ``If-Match`` (412).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from netweave.alarms.engine import refresh_active_gauge
from netweave.alarms.notifier import AlarmNotifier
from netweave.alarms.preconditions import check_if_match, etag
from netweave.alarms.scope import AlarmScope
from netweave.errors import (
    BackendUnavailableError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from netweave.models.alarms import (
    AlarmEventRecord,
    AlarmEventType,
    PerceivedSeverity,
    format_time,
    severity_label,
)
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics
from netweave.query import PageMarkers, schema_of
from netweave.query.listing import (
    FieldSelectionParams,
    ListQuery,
    RenderedPage,
    list_page,
    render_one,
)
from netweave.store.alarms import AlarmStore, StoredAlarm, next_revision

__all__ = ["AlarmService", "Modification", "parse_modification"]

_SCHEMA = schema_of(AlarmEventRecord)
_LISTING = "alarms"
_ACKNOWLEDGED = "alarmAcknowledged"
_SEVERITY = "perceivedSeverity"
_FIELDS = (_ACKNOWLEDGED, _SEVERITY)
_CAS_ATTEMPTS = 3

_log = get_logger("netweave.alarms.service")

Modification = Literal["acknowledge", "clear"]


def parse_modification(body: bytes) -> Modification:
    """What a PATCH body asks for; :class:`InvalidRequestError` (400) saying why not."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequestError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("the body must be a JSON object (AlarmEventRecordModifications)")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InvalidRequestError(
            f"unknown field(s) {', '.join(unknown)}: only alarmAcknowledged or "
            "perceivedSeverity may be modified"
        )
    present = [name for name in _FIELDS if name in data]
    if len(present) != 1:
        which = "both" if present else "neither"
        raise InvalidRequestError(
            f"exactly one of alarmAcknowledged and perceivedSeverity must be given (got {which})"
        )
    if _ACKNOWLEDGED in data:
        if data[_ACKNOWLEDGED] is not True:
            raise InvalidRequestError("alarmAcknowledged can only be set to true")
        return "acknowledge"
    value = data[_SEVERITY]
    if type(value) is not int or value != PerceivedSeverity.CLEARED:
        raise InvalidRequestError("perceivedSeverity can only be set to 5 (CLEARED)")
    return "clear"


@dataclass(frozen=True, slots=True)
class _Listed:
    object_id: str
    wire: dict[str, Any]
    raw: bytes

    @classmethod
    def of(cls, alarm: StoredAlarm) -> _Listed:
        wire = alarm.wire()
        return cls(alarm.alarm_id, wire, orjson.dumps(wire))


class AlarmService:
    def __init__(
        self,
        store: AlarmStore,
        *,
        notifier: AlarmNotifier,
        scope: AlarmScope,
        markers: PageMarkers,
        page_size: int,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._scope = scope
        self._markers = markers
        self._page_size = page_size
        self._clock = clock
        self._metrics = metrics

    async def list(self, query: ListQuery, *, tenant: str | None = None) -> RenderedPage:
        alarms = await self._store.list_alarms()
        entries = sorted(
            (_Listed.of(alarm) for alarm in alarms if self._scope.sees(tenant, alarm)),
            key=lambda entry: entry.object_id,
        )
        scope = query.scope(_LISTING)
        return list_page(
            entries,
            query,
            schema=_SCHEMA,
            markers=self._markers,
            scope=scope,
            page_size=self._page_size,
        )

    async def get(
        self, alarm_id: str, selection: FieldSelectionParams, *, tenant: str | None = None
    ) -> tuple[bytes, str]:
        """The record's JSON (fields selected) and its entity tag."""
        alarm = await self._visible(alarm_id, tenant)
        return render_one(_Listed.of(alarm), selection, _SCHEMA), etag(alarm.revision)

    async def modify(
        self,
        alarm_id: str,
        body: bytes,
        *,
        tenant: str | None = None,
        if_match: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Apply a PATCH body; the modification made (its wire form) and the new tag."""
        action = parse_modification(body)
        answer: dict[str, Any] = (
            {_ACKNOWLEDGED: True}
            if action == "acknowledge"
            else {_SEVERITY: int(PerceivedSeverity.CLEARED)}
        )
        for _ in range(_CAS_ATTEMPTS):
            alarm = await self._visible(alarm_id, tenant)
            check_if_match(if_match, alarm.revision)
            now = self._clock()
            if action == "acknowledge":
                if alarm.record.alarm_acknowledged:
                    return answer, etag(alarm.revision)
                at = format_time(now)
                record = alarm.record.model_copy(
                    update={
                        "alarm_acknowledged": True,
                        "alarm_acknowledged_time": at,
                        "alarm_changed_time": at,
                    }
                )
                updated = next_revision(alarm, record=record)
                event = AlarmEventType.ACKNOWLEDGE
            else:
                if alarm.clearing_type != "MANUAL":
                    raise ConflictError(
                        f"alarm {alarm_id} clears automatically (clearingType "
                        f"{alarm.clearing_type}); only MANUAL alarms can be cleared",
                    )
                if not alarm.active:
                    return answer, etag(alarm.revision)
                at = format_time(now)
                record = alarm.record.model_copy(
                    update={
                        "perceived_severity": PerceivedSeverity.CLEARED,
                        "alarm_cleared_time": at,
                        "alarm_changed_time": at,
                    }
                )
                updated = next_revision(alarm, record=record, cleared_at=now)
                event = AlarmEventType.CLEAR
            if await self._store.update_alarm(updated, expected_revision=alarm.revision):
                await self._notify(updated, event, now)
                self._count(event, alarm)
                if event is AlarmEventType.CLEAR and self._metrics is not None:
                    # the active gauge follows a manual clear at once, not at the next purge
                    await refresh_active_gauge(self._store, self._metrics)
                return answer, etag(updated.revision)
        raise ConflictError(f"alarm {alarm_id} kept changing while being modified; try again")

    async def _notify(self, alarm: StoredAlarm, event: AlarmEventType, now: float) -> None:
        try:
            await self._notifier.notify(alarm, event, event_time=now)
        except BackendUnavailableError as exc:
            # the change is made; answering 503 would make the client retry a no-op
            _log.error(
                "alarm modified but its notifications could not be queued",
                alarm_id=alarm.alarm_id,
                event=event.name,
                error=exc.detail,
            )

    def _count(self, event: AlarmEventType, before: StoredAlarm) -> None:
        if self._metrics is None:
            return
        labels = {
            "definition": before.definition_name,
            "severity": severity_label(before.severity),
        }
        if event is AlarmEventType.ACKNOWLEDGE:
            self._metrics.alarms_acknowledged.labels(**labels).inc()
        else:
            self._metrics.alarms_cleared.labels(**labels).inc()

    async def _visible(self, alarm_id: str, tenant: str | None) -> StoredAlarm:
        alarm = await self._store.get_alarm(alarm_id)
        if alarm is None or not self._scope.sees(tenant, alarm):
            raise NotFoundError(f"alarm {alarm_id} does not exist")
        return alarm
