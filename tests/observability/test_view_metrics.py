"""The inventory view's backend metrics, over a backend whose watch streams are scripted.

The scripted backend serves real inventory models (the simulated O-Cloud's) and, stream
by stream, the items and failures a real backend produces: a resynchronising snapshot
mid-stream, an unavailable backend, a refusal, a bug, a refused connection, a stream that
ends.  The view's real watch loop consumes them; the counters must tell exactly that story.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import ClassVar, cast

import pytest

from netweave.adapters.base import InventorySnapshot, WatchItem
from netweave.adapters.simulated import SimulatedAdapter
from netweave.errors import BackendUnavailableError, NotFoundError
from netweave.inventory.view import WATCH_ERROR_KINDS, WATCH_RESTART_CAUSES, InventoryView
from netweave.models.inventory import MODEL_OF_KIND
from netweave.observability.metrics import Metrics

#: a stream item that keeps the stream open, silent, until the test ends
HOLD = object()
Script = list[WatchItem | BaseException | object]


class ScriptedBackend:
    """A backend whose successive ``watch()`` streams play the given scripts."""

    name: ClassVar[str] = "scripted"

    def __init__(self, *scripts: Script) -> None:
        self._scripts = deque(scripts)
        self.subscriptions = 0

    async def watch(self) -> AsyncIterator[WatchItem]:
        self.subscriptions += 1
        script = self._scripts.popleft() if self._scripts else [HOLD]
        for item in script:
            if item is HOLD:
                await asyncio.Event().wait()
            elif isinstance(item, BaseException):
                raise item
            else:
                yield cast(WatchItem, item)


async def snapshot_and_event() -> tuple[InventorySnapshot, WatchItem]:
    simulated = SimulatedAdapter(ocloud_id=str(uuid.uuid4()))
    snapshot = InventorySnapshot(
        {kind: await simulated.list_objects(kind) for kind in MODEL_OF_KIND}
    )
    event = simulated.apply_churn_step()[0]
    await simulated.aclose()
    return snapshot, event


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, {"backend": "scripted", **labels})
    assert value is not None, f"no series {name}{labels}"
    return value


async def run_view_until(view: InventoryView, done: Callable[[], bool]) -> None:
    task = asyncio.create_task(view.run())
    try:
        async with asyncio.timeout(10):
            while not done():
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def new_view(backend: ScriptedBackend, metrics: Metrics) -> InventoryView:
    return InventoryView(
        backend,  # type: ignore[arg-type]  # the view needs only name and watch()
        metrics=metrics,
        backoff_initial=0.001,
        backoff_max=0.005,
    )


async def test_every_series_exists_at_zero_before_the_first_sync() -> None:
    metrics = Metrics(version="test", backend="scripted")
    new_view(ScriptedBackend(), metrics)
    assert sample(metrics, "netweave_inventory_view_ready") == 0
    assert sample(metrics, "netweave_backend_watch_up") == 0
    for kind in ("snapshot", "event"):
        assert sample(metrics, "netweave_backend_watch_items_total", kind=kind) == 0
    for kind in WATCH_ERROR_KINDS:
        assert sample(metrics, "netweave_backend_watch_errors_total", kind=kind) == 0
    for cause in WATCH_RESTART_CAUSES:
        assert sample(metrics, "netweave_backend_watch_restarts_total", cause=cause) == 0
    assert sample(metrics, "netweave_inventory_view_resyncs_total") == 0


async def test_the_counters_tell_the_story_of_the_streams() -> None:
    snapshot, event = await snapshot_and_event()
    backend = ScriptedBackend(
        [snapshot, event, snapshot, BackendUnavailableError("the backend is down")],
        [RuntimeError("a bug")],
        [NotFoundError("no such cluster")],
        [ConnectionRefusedError()],
        [snapshot],  # then the stream ends
        [snapshot, HOLD],
    )
    metrics = Metrics(version="test", backend="scripted")
    view = new_view(backend, metrics)
    await run_view_until(
        view,
        lambda: backend.subscriptions == 6 and sample(metrics, "netweave_backend_watch_up") == 1,
    )

    assert sample(metrics, "netweave_backend_watch_items_total", kind="snapshot") == 4
    assert sample(metrics, "netweave_backend_watch_items_total", kind="event") == 1
    assert sample(metrics, "netweave_inventory_view_resyncs_total") == 4
    errors = {
        kind: sample(metrics, "netweave_backend_watch_errors_total", kind=kind)
        for kind in WATCH_ERROR_KINDS
    }
    assert errors == {"unavailable": 2, "rejected": 1, "unexpected": 1}
    restarts = {
        cause: sample(metrics, "netweave_backend_watch_restarts_total", cause=cause)
        for cause in WATCH_RESTART_CAUSES
    }
    assert restarts == {"error": 4, "ended": 1, "resync": 1}
    assert sample(metrics, "netweave_backend_watch_up") == 1
    assert sample(metrics, "netweave_inventory_view_ready") == 1


async def test_a_failed_watch_is_down_while_the_view_stays_ready() -> None:
    snapshot, _ = await snapshot_and_event()
    backend = ScriptedBackend([snapshot, BackendUnavailableError("gone")], [HOLD])
    metrics = Metrics(version="test", backend="scripted")
    view = new_view(backend, metrics)
    await run_view_until(view, lambda: backend.subscriptions == 2)

    assert sample(metrics, "netweave_backend_watch_up") == 0  # no snapshot since the failure
    assert sample(metrics, "netweave_inventory_view_ready") == 1  # serving what it last saw
    assert sample(metrics, "netweave_backend_watch_restarts_total", cause="error") == 1
    assert sample(metrics, "netweave_inventory_view_objects", kind="ResourceInfo") > 0
