"""The Kubernetes reflector (list, watch, relist on 410, backoff, 403) against a mock API server.

No server runs: an ``httpx2.MockTransport`` answers each list and watch request with the next
scripted answer (a response or a transport error), and hangs, like an idle watch, once the
script is used up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from netweave.adapters.kubernetes.watching import (
    Backoff,
    Reflector,
    ResourceGoneError,
    WatchForbiddenError,
)

PATH = "/api/v1/nodes"
Answer = httpx.Response | Exception


def node(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": version},
    }


def listing(items: list[dict[str, Any]], version: str, cont: str | None = None) -> httpx.Response:
    metadata: dict[str, Any] = {"resourceVersion": version}
    if cont:
        metadata["continue"] = cont
    return httpx.Response(200, json={"kind": "NodeList", "metadata": metadata, "items": items})


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def stream(*events: dict[str, Any]) -> httpx.Response:
    """A watch stream that sends ``events`` and ends (the server's timeout)."""
    return httpx.Response(200, content=b"".join(orjson.dumps(e) + b"\n" for e in events))


def open_stream(*events: dict[str, Any]) -> httpx.Response:
    """A watch stream that sends ``events`` and then stays open until cancelled."""

    async def body() -> AsyncIterator[bytes]:
        for item in events:
            yield orjson.dumps(item) + b"\n"
        await asyncio.Event().wait()

    return httpx.Response(200, content=body())


def status(code: int, reason: str, message: str) -> httpx.Response:
    body = {"kind": "Status", "status": "Failure", "reason": reason, "code": code}
    return httpx.Response(code, json={**body, "message": message})


def gone_event() -> dict[str, Any]:
    return event(
        "ERROR",
        {
            "kind": "Status",
            "status": "Failure",
            "reason": "Expired",
            "code": 410,
            "message": "too old resource version: 1 (42)",
        },
    )


class FakeAPI:
    """Scripted answers to list and watch requests; records every request."""

    def __init__(self) -> None:
        self.lists: list[Answer] = []
        self.watches: list[Answer] = []
        self.requests: list[httpx.Request] = []
        self.idle = asyncio.Event()  # a request came that the script has no answer for

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        script = self.watches if request.url.params.get("watch") else self.lists
        if not script:
            self.idle.set()
            await asyncio.Event().wait()  # like an idle watch: until cancelled
        answer = script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def params(self, *, watch: bool) -> list[dict[str, str]]:
        return [
            dict(r.url.params) for r in self.requests if bool(r.url.params.get("watch")) is watch
        ]


class Changes:
    """An ``on_change`` callback that records ``(uid, old name/version, new name/version)``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str | None]] = []

    def __call__(self, uid: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        self.seen.append((uid, _version(old), _version(new)))

    def take(self) -> list[tuple[str, str | None, str | None]]:
        taken, self.seen = self.seen, []
        return taken


def _version(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else str(obj["metadata"]["resourceVersion"])


class RecordingBackoff(Backoff):
    """A tiny backoff that records every delay it hands out."""

    def __init__(self) -> None:
        super().__init__(initial=0.001, maximum=0.004)
        self.delays: list[float] = []

    def next(self) -> float:
        delay = super().next()
        self.delays.append(delay)
        return delay


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
async def http(api: FakeAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.MockTransport(api.handle)
    async with httpx.AsyncClient(transport=transport, base_url="https://kube.test") as client:
        yield client


@pytest.fixture
def make_reflector(http: httpx.AsyncClient, changes: Changes) -> Callable[..., Reflector]:
    def make(**options: Any) -> Reflector:
        return Reflector(http, PATH, resource="nodes", on_change=changes, **options)

    return make


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Reflector], asyncio.Task[None]]]:
    """Starts ``reflector.run()`` in a task; every task is cancelled and awaited at teardown."""
    tasks: list[asyncio.Task[None]] = []

    def start(reflector: Reflector) -> asyncio.Task[None]:
        task = asyncio.create_task(reflector.run())
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), within)


# One list, one watch stream ----------------------------------------------------------------


async def test_relist_follows_continue_tokens_through_all_pages(
    api: FakeAPI, changes: Changes, make_reflector: Callable[..., Reflector]
) -> None:
    api.lists = [
        listing([node("a", "1"), node("b", "2")], "40", cont="page-2"),
        listing([node("c", "3"), node("d", "4")], "41", cont="page-3"),
        listing([node("e", "5")], "42"),
    ]
    reflector = make_reflector(page_size=2)

    await reflector.relist()

    assert api.params(watch=False) == [
        {"limit": "2"},
        {"limit": "2", "continue": "page-2"},
        {"limit": "2", "continue": "page-3"},
    ]
    assert sorted(reflector.objects) == [f"uid-{name}" for name in "abcde"]
    assert reflector.resource_version == "42"
    assert reflector.synced.is_set()
    assert reflector.degraded is None
    assert changes.take() == [(f"uid-{n}", None, v) for n, v in zip("abcde", "12345", strict=True)]


async def test_relist_reports_creates_modifies_and_deletes(
    api: FakeAPI, changes: Changes, make_reflector: Callable[..., Reflector]
) -> None:
    api.lists = [
        listing([node("same", "1"), node("changed", "2"), node("gone", "3")], "10"),
        listing([node("same", "1"), node("changed", "7"), node("new", "8")], "20"),
    ]
    reflector = make_reflector()
    await reflector.relist()
    changes.take()

    await reflector.relist()

    assert changes.take() == [
        ("uid-changed", "2", "7"),  # modified: its resourceVersion changed
        ("uid-new", None, "8"),  # created
        ("uid-gone", "3", None),  # deleted
    ]  # "same" kept its resourceVersion: not reported
    assert sorted(reflector.objects) == ["uid-changed", "uid-new", "uid-same"]
    assert reflector.resource_version == "20"


async def test_watch_applies_added_modified_and_deleted(
    api: FakeAPI, changes: Changes, make_reflector: Callable[..., Reflector]
) -> None:
    api.lists = [listing([node("a", "1")], "10")]
    api.watches = [
        stream(
            event("ADDED", node("b", "11")),
            event("MODIFIED", node("a", "12")),
            event("DELETED", node("b", "13")),
            event("DELETED", node("never-seen", "14")),
        )
    ]
    reflector = make_reflector(watch_timeout=120)
    await reflector.relist()
    changes.take()

    await reflector.watch_once()

    assert changes.seen == [("uid-b", None, "11"), ("uid-a", "1", "12"), ("uid-b", "11", None)]
    assert list(reflector.objects) == ["uid-a"]
    assert reflector.objects["uid-a"]["metadata"]["resourceVersion"] == "12"
    assert reflector.resource_version == "14"
    assert api.params(watch=True) == [
        {
            "watch": "1",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "120",
            "resourceVersion": "10",
        }
    ]


async def test_bookmark_moves_the_resume_point_without_a_change(
    api: FakeAPI, changes: Changes, make_reflector: Callable[..., Reflector]
) -> None:
    api.lists = [listing([node("a", "1")], "10")]
    bookmark = {"kind": "Node", "apiVersion": "v1", "metadata": {"resourceVersion": "99"}}
    api.watches = [stream(event("BOOKMARK", bookmark))]
    reflector = make_reflector()
    await reflector.relist()
    changes.take()
    held = dict(reflector.objects)

    await reflector.watch_once()

    assert reflector.resource_version == "99"
    assert changes.seen == []
    assert reflector.objects == held


async def test_error_event_410_raises_resource_gone(
    api: FakeAPI, make_reflector: Callable[..., Reflector]
) -> None:
    api.watches = [stream(event("MODIFIED", node("a", "11")), gone_event())]
    reflector = make_reflector()
    reflector.resource_version = "1"

    with pytest.raises(ResourceGoneError, match="too old resource version"):
        await reflector.watch_once()
    assert reflector.resource_version == "11"  # events before the error were applied


async def test_other_error_events_are_http_errors(
    api: FakeAPI, make_reflector: Callable[..., Reflector]
) -> None:
    failure = {"kind": "Status", "code": 500, "message": "etcd is sad"}
    api.watches = [stream(event("ERROR", failure))]

    with pytest.raises(httpx.HTTPError, match="etcd is sad"):
        await make_reflector().watch_once()


async def test_http_410_when_the_watch_starts_raises_resource_gone(
    api: FakeAPI, make_reflector: Callable[..., Reflector]
) -> None:
    api.watches = [status(410, "Expired", "too old resource version: 1 (42)")]
    reflector = make_reflector()
    reflector.resource_version = "1"

    with pytest.raises(ResourceGoneError):
        await reflector.watch_once()


@pytest.mark.parametrize("on_watch", [False, True])
async def test_403_raises_watch_forbidden(
    api: FakeAPI, make_reflector: Callable[..., Reflector], on_watch: bool
) -> None:
    denied = status(403, "Forbidden", 'nodes is forbidden: User "x" cannot list resource')
    reflector = make_reflector()
    if on_watch:
        api.watches = [denied]
        call = reflector.watch_once
    else:
        api.lists = [denied]
        call = reflector.relist

    with pytest.raises(WatchForbiddenError, match='User "x" cannot list'):
        await call()


# The forever loop ----------------------------------------------------------------------------


async def test_run_marks_a_forbidden_kind_degraded_and_synced_then_recovers(
    api: FakeAPI,
    changes: Changes,
    make_reflector: Callable[..., Reflector],
    running: Callable[[Reflector], asyncio.Task[None]],
) -> None:
    api.lists = [status(403, "Forbidden", "nodes is forbidden"), listing([node("a", "1")], "10")]
    reflector = make_reflector(forbidden_retry=0.3)
    task = running(reflector)

    await asyncio.wait_for(reflector.synced.wait(), 5)
    # degraded but synced: the rest of the inventory is not held back
    assert reflector.degraded == "forbidden to list/watch nodes"
    assert reflector.objects == {}
    assert len(api.requests) == 1  # waits forbidden_retry, no retry loop
    assert not task.done()

    # the permission is granted: the next attempt lists and clears the degradation
    await until(lambda: bool(reflector.objects))
    assert reflector.degraded is None
    assert changes.take() == [("uid-a", None, "1")]
    assert not task.done()


async def test_run_resumes_from_the_last_version_after_transport_errors(
    api: FakeAPI,
    changes: Changes,
    make_reflector: Callable[..., Reflector],
    running: Callable[[Reflector], asyncio.Task[None]],
) -> None:
    api.lists = [listing([node("a", "1")], "10")]
    api.watches = [
        stream(event("MODIFIED", node("a", "11"))),  # then the server ends the stream
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset by peer"),
        status(503, "ServiceUnavailable", "the API server is shutting down"),
        open_stream(event("MODIFIED", node("a", "12"))),
    ]
    backoff = RecordingBackoff()
    reflector = make_reflector(backoff=backoff)
    running(reflector)

    await until(lambda: reflector.resource_version == "12")

    assert len(api.params(watch=False)) == 1  # no relist: nothing expired
    versions = [params.get("resourceVersion") for params in api.params(watch=True)]
    assert versions == ["10", "11", "11", "11", "11"]
    assert len(backoff.delays) == 3  # one per failure; a stream that just ends is no failure
    # 1, 2, 4 ms with +-20 % jitter: every delay is longer than the one before
    assert backoff.delays == sorted(backoff.delays)
    assert 0.0008 <= backoff.delays[0] <= 0.0012
    assert 0.0032 <= backoff.delays[2] <= 0.0048
    assert reflector.restarts == 3
    assert backoff._current == 0  # reset once a stream opened
    assert changes.take() == [("uid-a", None, "1"), ("uid-a", "1", "11"), ("uid-a", "11", "12")]


async def test_run_retries_a_failed_first_list(
    api: FakeAPI,
    make_reflector: Callable[..., Reflector],
    running: Callable[[Reflector], asyncio.Task[None]],
) -> None:
    api.lists = [
        httpx.ConnectError("connection refused"),
        status(500, "InternalError", "etcdserver: request timed out"),
        listing([node("a", "1")], "10"),
    ]
    backoff = RecordingBackoff()
    reflector = make_reflector(backoff=backoff)
    running(reflector)

    await asyncio.wait_for(reflector.synced.wait(), 5)

    assert list(reflector.objects) == ["uid-a"]
    assert len(backoff.delays) == 2
    assert reflector.degraded is None


async def test_run_relists_on_410_and_reports_what_changed_meanwhile(
    api: FakeAPI,
    changes: Changes,
    make_reflector: Callable[..., Reflector],
    running: Callable[[Reflector], asyncio.Task[None]],
) -> None:
    api.lists = [
        listing([node("kept", "1"), node("changed", "2"), node("deleted", "3")], "10"),
        listing([node("kept", "1"), node("changed", "5"), node("created", "6")], "20"),
    ]
    api.watches = [stream(gone_event())]
    backoff = RecordingBackoff()
    reflector = make_reflector(backoff=backoff)
    running(reflector)
    await asyncio.wait_for(reflector.synced.wait(), 5)

    await asyncio.wait_for(api.idle.wait(), 5)  # relisted, and watching again

    assert changes.take() == [
        ("uid-kept", None, "1"),  # the first list
        ("uid-changed", None, "2"),
        ("uid-deleted", None, "3"),
        ("uid-changed", "2", "5"),  # the list after the 410: what changed meanwhile
        ("uid-created", None, "6"),
        ("uid-deleted", "3", None),
    ]
    assert [p.get("resourceVersion") for p in api.params(watch=True)] == ["10", "20"]
    assert reflector.restarts == 1
    assert backoff.delays == []  # a 410 is answered by a list at once, not a backoff


# Backoff -----------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_maximum_and_resets() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    delays = [backoff.next() for _ in range(7)]
    for delay, base in zip(delays, [1, 2, 4, 8, 8, 8, 8], strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    backoff.reset()
    assert 0.8 <= backoff.next() <= 1.2


def test_backoff_defaults_are_half_a_second_to_thirty() -> None:
    backoff = Backoff()
    delays = [backoff.next() for _ in range(20)]
    assert 0.4 <= delays[0] <= 0.6
    assert max(delays) <= 36.0
    assert 24.0 <= delays[-1]
