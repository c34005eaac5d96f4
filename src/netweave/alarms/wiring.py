"""The alarm service's parts, built from the settings for the application's lifespan.

Kept out of :mod:`netweave.app` so the composition root stays one call: the backend is the
alarm source when it implements :class:`~netweave.adapters.alarms.AlarmSource` (without one
the API still answers: no dictionaries, no alarms); the store is the gateway's (alarm
notifications share its outbox and delivery workers); the records live next to it
(:func:`netweave.store.factory.build_alarm_store`).

``app.state`` names: ``alarms`` (:class:`~.service.AlarmService`), ``alarm_configuration``,
``alarm_subscriptions``, ``alarm_dictionaries``, ``alarm_engine``, ``alarm_store``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from netweave.adapters.alarms import AlarmSource
from netweave.adapters.base import InfrastructureAdapter
from netweave.alarms.catalog import AlarmCatalog
from netweave.alarms.configuration import AlarmConfigurationService
from netweave.alarms.dictionaries import DictionaryService
from netweave.alarms.engine import AlarmEngine
from netweave.alarms.notifier import AlarmNotifier
from netweave.alarms.retention import AlarmRetention
from netweave.alarms.scope import AlarmScope
from netweave.alarms.service import AlarmService
from netweave.alarms.subscriptions import AlarmSubscriptionService, QuotaLookup
from netweave.config import Settings
from netweave.inventory.view import InventoryView
from netweave.models.inventory import ObjectKind, ResourceType
from netweave.notifications.callbacks import CallbackPolicy
from netweave.observability.metrics import Metrics
from netweave.query import PageMarkers
from netweave.security.visibility import TenantVisibility
from netweave.store.alarms import AlarmStore, InMemoryAlarmStore
from netweave.store.base import Store
from netweave.store.factory import build_alarm_store
from netweave.store.memory import InMemoryStore

__all__ = ["AlarmComponents", "build_alarms"]


@dataclass
class AlarmComponents:
    store: AlarmStore
    source: AlarmSource | None
    service: AlarmService
    configuration: AlarmConfigurationService
    subscriptions: AlarmSubscriptionService
    dictionaries: DictionaryService
    engine: AlarmEngine
    retention: AlarmRetention

    def publish(self, state: Any) -> None:
        """Put the parts the routers use on ``app.state``."""
        state.alarm_store = self.store
        state.alarms = self.service
        state.alarm_configuration = self.configuration
        state.alarm_subscriptions = self.subscriptions
        state.alarm_dictionaries = self.dictionaries
        state.alarm_engine = self.engine

    def start(self) -> list[asyncio.Task[None]]:
        """The background tasks: the engine (when there is a source) and the retention."""
        return [
            asyncio.create_task(self.engine.run(self.source), name="alarm-engine"),
            asyncio.create_task(self.retention.run(), name="alarm-retention"),
        ]


def build_alarms(
    settings: Settings,
    *,
    adapter: InfrastructureAdapter,
    view: InventoryView,
    visibility: TenantVisibility,
    store: Store,
    markers: PageMarkers,
    http: httpx.AsyncClient,
    max_subscriptions: QuotaLookup,
    metrics: Metrics,
) -> AlarmComponents:
    source = adapter if isinstance(adapter, AlarmSource) else None
    alarm_store = build_alarm_store(store, settings)
    if isinstance(store, InMemoryStore) and isinstance(alarm_store, InMemoryAlarmStore):
        # their dead letters can be replayed (Redis: the replay script reads the hash)
        store.also_subscribed(alarm_store.has_subscription)
    ocloud_id = settings.effective_ocloud_id

    def resource_type(resource_type_id: str) -> ResourceType | None:
        entry = view.get(ObjectKind.RESOURCE_TYPE, resource_type_id)
        model = None if entry is None else entry.model
        return model if isinstance(model, ResourceType) else None

    def has_resource_type(resource_type_id: str) -> bool | None:
        if not view.ready:
            return None
        return view.get(ObjectKind.RESOURCE_TYPE, resource_type_id) is not None

    catalog = AlarmCatalog(ocloud_id, source, resource_type=resource_type)
    scope = AlarmScope.of(view, visibility)
    notifier = AlarmNotifier(
        alarm_store,
        store,
        scope=scope,
        api_root=settings.effective_service_uri,
        global_cloud_id=settings.effective_global_cloud_id,
    )
    configuration = AlarmConfigurationService(
        alarm_store, default_retention_days=settings.alarm_retention_days
    )
    policy = CallbackPolicy.from_allowlist(
        settings.callback_allowlist.split(","),
        verify=settings.callback_verify,
        verify_timeout=settings.callback_verify_timeout,
    )
    return AlarmComponents(
        store=alarm_store,
        source=source,
        service=AlarmService(
            alarm_store,
            notifier=notifier,
            scope=scope,
            markers=markers,
            page_size=settings.max_page_size,
            metrics=metrics,
        ),
        configuration=configuration,
        subscriptions=AlarmSubscriptionService(
            alarm_store,
            outbox=store,
            policy=policy,
            http=http,
            markers=markers,
            page_size=settings.max_page_size,
            max_subscriptions=max_subscriptions,
        ),
        dictionaries=DictionaryService(
            catalog,
            markers=markers,
            page_size=settings.max_page_size,
            has_resource_type=has_resource_type,
        ),
        engine=AlarmEngine(
            alarm_store,
            lease=store,
            catalog=catalog,
            notifier=notifier,
            scope=scope,
            replica=settings.effective_replica_id,
            lease_ttl=settings.emitter_lease_ttl,
            metrics=metrics,
        ),
        retention=AlarmRetention(
            alarm_store,
            configuration,
            interval=settings.alarm_purge_interval,
            metrics=metrics,
        ),
    )
