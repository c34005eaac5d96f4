"""Alarm housekeeping: cleared alarms older than the retention period are dropped.

Every ``interval`` seconds, the records cleared more than ``retentionPeriod`` days ago
(the alarm service configuration, :mod:`.configuration`) are purged from the store;
active alarms are never purged, however old.  Every replica runs it: a purge is
idempotent and cheap (a range of a sorted set in Redis).  The same pass refreshes the
``netweave_alarms_active`` gauge, so replicas that do not record alarms report it too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from netweave.alarms.configuration import AlarmConfigurationService
from netweave.alarms.engine import refresh_active_gauge
from netweave.errors import O2Error
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics
from netweave.store.alarms import AlarmStore

__all__ = ["DAY", "AlarmRetention"]

DAY = 86_400.0

_log = get_logger("netweave.alarms.retention")


class AlarmRetention:
    def __init__(
        self,
        store: AlarmStore,
        configuration: AlarmConfigurationService,
        *,
        interval: float = 300.0,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("the purge interval must be positive")
        self._store = store
        self._configuration = configuration
        self._interval = interval
        self._clock = clock
        self._metrics = metrics

    async def purge_once(self) -> int:
        """Drop the alarms cleared before the retention horizon; how many were dropped."""
        days = await self._configuration.retention_days()
        dropped = await self._store.purge_cleared(self._clock() - days * DAY)
        if dropped:
            _log.info("cleared alarms past retention dropped", count=dropped, retention_days=days)
        if self._metrics is not None:
            await refresh_active_gauge(self._store, self._metrics)
        return dropped

    async def run(self) -> None:
        """Purge every ``interval`` seconds until cancelled; failures are logged."""
        while True:
            try:
                await self.purge_once()
            except O2Error as exc:
                _log.warning("alarm retention pass failed", error=exc.detail)
            await asyncio.sleep(self._interval)
