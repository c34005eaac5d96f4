"""The alarm engine: a backend's alarm signals in, alarm event records and notifications out.

The backend's :meth:`~netweave.adapters.alarms.AlarmSource.alarm_signals` stream is read
by every replica; only the holder of the ``alarm-emitter`` lease writes records and
notifications.  Each item is applied to the store idempotently, so re-applying one is
harmless:

* an :class:`~netweave.adapters.alarms.AlarmSnapshot` reconciles everything: an active
  alarm the store lacks is raised (NEW), one whose severity differs changes (CHANGE), and
  one the store holds as active but the snapshot no longer lists cleared while nobody was
  looking (CLEAR, at the time its clear signal was seen if it was, else now);
* a raised :class:`~netweave.adapters.alarms.AlarmSignal` raises its alarm (NEW) or
  changes its severity (CHANGE); a cleared one clears it (CLEAR, ``alarmClearedTime`` is
  the signal's time, ``perceivedSeverity`` becomes 5).

A raise whose time is not after the last clear of the same key is an occurrence already
cleared (a MANUAL alarm an operator cleared that the backend still lists, or a replayed
signal) and is ignored.

Replicas: the records are written with compare-and-set (:mod:`netweave.store.alarms`), so
two replicas that both believe they hold the lease for a moment cannot both record -- or
notify -- the same transition.  A replica that does not hold the lease keeps the latest
state the stream described; when it takes the lease over it reconciles that state with
the store, like a snapshot (a transition that came and went while the old holder was
dying is lost; the end state is right).

Store outages: items wait in memory (at most ``buffer_limit``, then the engine falls back
to reconciling its latest state once the store is back).  A record is written before its
notifications are enqueued (the same Redis): should the store fail in between, the
transition is recorded but its notifications are lost -- retrying the item finds nothing
left to do.  The inventory's engine has the same narrow window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from netweave.adapters.alarms import (
    SEVERITY_CLEARED,
    SEVERITY_INDETERMINATE,
    AlarmSignal,
    AlarmSignalItem,
    AlarmSnapshot,
    AlarmSource,
)
from netweave.alarms.catalog import (
    AlarmCatalog,
    alarm_definition_id,
    alarm_record_id,
    probable_cause_id,
)
from netweave.alarms.notifier import AlarmNotifier
from netweave.alarms.scope import AlarmScope
from netweave.errors import BackendUnavailableError
from netweave.models.alarms import (
    AlarmEventRecord,
    AlarmEventType,
    PerceivedSeverity,
    format_time,
    severity_label,
)
from netweave.observability import tracing
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics
from netweave.store.alarms import AlarmStore, StoredAlarm, next_revision
from netweave.store.base import Lease

__all__ = ["LEASE", "AlarmEngine"]

LEASE = "alarm-emitter"

_log = get_logger("netweave.alarms.engine")

#: clear times of keys remembered for a takeover reconciliation
_CLEARS_KEPT = 10_000
#: writes retried when another writer changed the record in between
_CAS_ATTEMPTS = 3


class AlarmEngine:
    def __init__(
        self,
        store: AlarmStore,
        *,
        lease: Lease,
        catalog: AlarmCatalog,
        notifier: AlarmNotifier,
        scope: AlarmScope,
        replica: str,
        lease_ttl: float = 10.0,
        buffer_limit: int = 10_000,
        retry_delay: float = 1.0,
        reconnect_delay: float = 1.0,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._lease = lease
        self._catalog = catalog
        self._notifier = notifier
        self._scope = scope
        self.replica = replica
        self._lease_ttl = lease_ttl
        self._buffer_limit = buffer_limit
        self._retry_delay = retry_delay
        self._reconnect_delay = reconnect_delay
        self._clock = clock
        self._metrics = metrics
        self._pending: deque[AlarmSignalItem] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        #: the state the stream describes now (None until its first snapshot)
        self._desired: dict[str, AlarmSignal] | None = None
        self._clears: OrderedDict[str, float] = OrderedDict()
        self._resync = False
        self._lease_until = 0.0
        self.fencing_token: int | None = None
        self.applied = 0

    @property
    def is_emitter(self) -> bool:
        return self.fencing_token is not None and self._clock() < self._lease_until

    # Input --------------------------------------------------------------------------------

    def offer(self, item: AlarmSignalItem) -> None:
        """Take one item of the stream (never blocks; applied by :meth:`run`)."""
        self._track(item)
        if len(self._pending) >= self._buffer_limit:
            # too far behind: forget the items, reconcile the latest state instead
            self._pending.clear()
            self._resync = True
        else:
            self._pending.append(item)
        self._idle.clear()
        self._wake.set()

    def _track(self, item: AlarmSignalItem) -> None:
        if isinstance(item, AlarmSnapshot):
            self._desired = {signal.key: signal for signal in item.active}
            return
        if self._desired is None:
            return  # no snapshot yet: nothing to track against
        if item.raised:
            self._desired[item.key] = item
        else:
            self._desired.pop(item.key, None)
            self._clears[item.key] = item.event_time
            self._clears.move_to_end(item.key)
            if len(self._clears) > _CLEARS_KEPT:
                self._clears.popitem(last=False)

    async def wait_idle(self) -> None:
        """Wait until every item offered so far has been applied (tests, tools)."""
        await self._idle.wait()

    # Running ------------------------------------------------------------------------------

    async def run(self, source: AlarmSource | None) -> None:
        """Read ``source``'s stream and apply it while holding the lease, until cancelled.
        Without a source there is nothing to do."""
        if source is None:
            return
        try:
            await asyncio.gather(self._lease_loop(), self._apply_loop(), self._read(source))
        finally:
            if self.fencing_token is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await self._lease.release(LEASE, self.replica)

    async def _read(self, source: AlarmSource) -> None:
        delay = self._reconnect_delay
        while True:
            try:
                stream: AsyncIterator[AlarmSignalItem] = source.alarm_signals()
                async for item in stream:
                    self.offer(item)
                    delay = self._reconnect_delay
                _log.warning("the alarm stream ended; reading it again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("the alarm stream failed; reading it again", error=repr(exc)[:200])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _lease_loop(self) -> None:
        while True:
            was = self.is_emitter
            started = self._clock()
            try:
                token = await self._lease.acquire(LEASE, self.replica, ttl=self._lease_ttl)
            except BackendUnavailableError as exc:
                _log.warning("cannot renew the alarm emitter lease", error=exc.detail)
            else:
                self.fencing_token = token
                self._lease_until = started + self._lease_ttl if token is not None else 0.0
                if token is not None and not was:
                    _log.info("this replica now records alarms", fencing_token=token)
                    self._resync = True
                    self._idle.clear()
                    self._wake.set()
            await asyncio.sleep(self._lease_ttl / 3)

    async def _apply_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.is_emitter:
                self._pending.clear()  # the latest state is kept in _desired
                self._idle.set()
                continue
            if not await self._apply_pending():
                await asyncio.sleep(self._retry_delay)
                self._wake.set()
                continue
            await self._refresh_active_gauge()
            if not self._pending and not self._resync:
                self._idle.set()

    async def _apply_pending(self) -> bool:
        """Apply what is pending (a takeover's reconciliation first); False when the store
        is unavailable and it must be tried again later."""
        try:
            if self._resync:
                self._pending.clear()  # the desired state includes them
                if self._desired is not None:
                    await self.reconcile(self._desired, clears=self._clears)
                self._resync = False
            while self._pending and self.is_emitter:
                try:
                    await self.apply(self._pending[0])
                except BackendUnavailableError:
                    raise
                except Exception:  # a bug must not stop alarm processing: skip the item
                    _log.exception("applying an alarm signal failed; it is skipped")
                self._pending.popleft()
        except BackendUnavailableError as exc:
            _log.warning(
                "store unavailable; alarm signals wait in memory",
                error=exc.detail,
                waiting=len(self._pending),
            )
            return False
        except Exception:
            _log.exception("reconciling the alarms failed; the next snapshot will")
            self._resync = False
        return True

    # Applying -----------------------------------------------------------------------------

    async def apply(self, item: AlarmSignalItem) -> None:
        """Bring the store in line with one item of the stream (holding the lease).

        With tracing on, the item is a span ("alarm change"): the store calls and the
        notifications it causes are its children, their delivery attempts too."""
        with tracing.span("alarm change", lambda: _describe(item)):
            if isinstance(item, AlarmSnapshot):
                await self.reconcile({signal.key: signal for signal in item.active})
            elif item.raised:
                await self._raise(item, await self._store.active_alarm(item.key))
            else:
                current = await self._store.active_alarm(item.key)
                if current is not None:
                    await self._clear(current, at=item.event_time)
        self.applied += 1

    async def reconcile(
        self, active: Mapping[str, AlarmSignal], *, clears: Mapping[str, float] | None = None
    ) -> None:
        """Make the store's active alarms exactly ``active``; ``clears`` gives the clear
        times seen for keys (others clear now)."""
        stored = await self._store.active_alarms()
        for key, signal in active.items():
            await self._raise(signal, stored.get(key))
        for key, alarm in stored.items():
            if key not in active:
                at = (clears or {}).get(key)
                await self._clear(alarm, at=self._clock() if at is None else at)

    async def _raise(self, signal: AlarmSignal, current: StoredAlarm | None) -> None:
        severity = _raised_severity(signal)
        if current is None:
            await self._new(signal, severity)
            return
        for _ in range(_CAS_ATTEMPTS):
            if current is None or not current.active or current.severity == severity:
                return
            at = format_time(signal.event_time)
            record = current.record.model_copy(
                update={"perceived_severity": PerceivedSeverity(severity), "alarm_changed_time": at}
            )
            changed = next_revision(current, record=record)
            if await self._store.update_alarm(changed, expected_revision=current.revision):
                await self._notifier.notify(
                    changed, AlarmEventType.CHANGE, event_time=signal.event_time
                )
                return
            current = await self._store.get_alarm(current.alarm_id)

    async def _new(self, signal: AlarmSignal, severity: int) -> None:
        last_clear = await self._store.last_cleared(signal.key)
        if last_clear is not None and signal.event_time <= last_clear:
            return  # this occurrence was cleared already
        raised = format_time(signal.event_time)
        alarm_id = alarm_record_id(self._catalog.ocloud_id, signal.key, raised)
        definition = self._catalog.definition(signal.resource_type_id, signal.definition_key)
        ocloud = self._catalog.ocloud_id
        record = AlarmEventRecord(
            alarm_event_record_id=alarm_id,
            alarm_definition_id=alarm_definition_id(ocloud, signal.definition_key),
            probable_cause_id=probable_cause_id(
                ocloud,
                definition.probable_cause if definition is not None else signal.definition_key,
            ),
            alarm_raised_time=raised,
            resource_type_id=signal.resource_type_id,
            resource_id=signal.resource_id,
            perceived_severity=PerceivedSeverity(severity),
            extensions=_json_object(signal.extensions),
        )
        alarm = StoredAlarm(
            record=record,
            key=signal.key,
            definition_key=signal.definition_key,
            definition_name=definition.name if definition is not None else signal.definition_key,
            clearing_type=definition.clearing_type if definition is not None else "AUTOMATIC",
            resource_pool_id=self._scope.pool_of(signal.resource_id),
            raised_at=signal.event_time,
        )
        if not await self._store.create_alarm(alarm):
            return  # another writer recorded it (or an active alarm of the key) first
        await self._notifier.notify(alarm, AlarmEventType.NEW, event_time=signal.event_time)
        if self._metrics is not None:
            labels = {"definition": alarm.definition_name, "severity": severity_label(severity)}
            self._metrics.alarms_raised.labels(**labels).inc()

    async def _clear(self, current: StoredAlarm | None, *, at: float) -> None:
        for _ in range(_CAS_ATTEMPTS):
            if current is None or not current.active:
                return
            when = format_time(at)
            record = current.record.model_copy(
                update={
                    "perceived_severity": PerceivedSeverity.CLEARED,
                    "alarm_cleared_time": when,
                    "alarm_changed_time": when,
                }
            )
            cleared = next_revision(current, record=record, cleared_at=at)
            if await self._store.update_alarm(cleared, expected_revision=current.revision):
                await self._notifier.notify(cleared, AlarmEventType.CLEAR, event_time=at)
                if self._metrics is not None:
                    self._metrics.alarms_cleared.labels(
                        definition=current.definition_name,
                        severity=severity_label(current.severity),
                    ).inc()
                return
            current = await self._store.get_alarm(current.alarm_id)

    async def _refresh_active_gauge(self) -> None:
        if self._metrics is None:
            return
        try:
            await refresh_active_gauge(self._store, self._metrics)
        except BackendUnavailableError:
            pass  # the next batch or the housekeeping sets it


async def refresh_active_gauge(store: AlarmStore, metrics: Metrics) -> None:
    """Set ``netweave_alarms_active`` from the store's active alarms."""
    counts = dict.fromkeys((severity_label(s) for s in range(SEVERITY_CLEARED)), 0)
    for alarm in (await store.active_alarms()).values():
        label = severity_label(alarm.severity)
        counts[label] = counts.get(label, 0) + 1
    for label, count in counts.items():
        metrics.alarms_active.labels(severity=label).set(count)


def _raised_severity(signal: AlarmSignal) -> int:
    """The perceived severity of a raised signal: 0..4 (an out-of-range one counts as
    INDETERMINATE: a raised alarm is never CLEARED)."""
    if 0 <= signal.severity < SEVERITY_CLEARED:
        return signal.severity
    _log.warning("alarm signal with an invalid severity", key=signal.key, severity=signal.severity)
    return SEVERITY_INDETERMINATE


def _describe(item: AlarmSignalItem) -> dict[str, str | int | bool]:
    """The attributes of an alarm item's span."""
    if isinstance(item, AlarmSnapshot):
        return {"netweave.alarm.snapshot_active": len(item.active)}
    return {
        "netweave.alarm.key": item.key,
        "netweave.alarm.definition": item.definition_key,
        "netweave.alarm.raised": item.raised,
        "netweave.resource_id": item.resource_id,
    }


def _json_object(extensions: Mapping[str, Any]) -> dict[str, Any]:
    """The source's extensions as plain JSON (values it cannot encode become strings)."""
    data: dict[str, Any] = orjson.loads(orjson.dumps(dict(extensions), default=str))
    return data
