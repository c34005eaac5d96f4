"""Notification benchmark: event-to-callback latency, fan-out and sustained deliveries.

For each store (in-memory, Redis) the gateway runs in this process (``tests.servers``:
uvicorn in a thread, the simulated O-Cloud without churn, access log off, callbacks on
127.0.0.1 allow-listed) next to 10 receiver processes (``bench/receiver_server.py``: raw
ASGI under uvicorn with uvloop and httptools, answering 204 and printing one line per POST
with its arrival time; one thread here reads them all).  Subscriptions are made
through the standard API (each one verified with ``GET <callback>``); events are MODIFY
events of an existing resource pool handed to the running ``NotificationEngine.on_event``
inside the gateway's event loop, exactly as the inventory view hands over a change.

* **latency**: 1 subscription, ``--events`` events one after the other (the outbox empty
  before each); latency = arrival at the receiver - the moment before ``on_event``;
  p50 and p99 per round;
* **fan-out**: 1,000 subscriptions over the 10 receivers (distinct paths), one event; time
  until all 1,000 POSTs arrived;
* **sustained**: 20 subscriptions, 500 events handed over at once (10,000 deliveries);
  deliveries/s from the first event to the last arrival, and the CPU used meanwhile by
  the gateway's event-loop thread (and by redis-server).

Medians of ``--rounds`` rounds.  Everything listens on 127.0.0.1 and stops at the end.

    python bench/notifications.py [--store memory|redis|both] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import RunningGateway, serve_gateway  # noqa: E402

from netweave.adapters.base import EventType, InventoryEvent  # noqa: E402
from netweave.models.inventory import ObjectKind  # noqa: E402
from netweave.notifications.engine import NotificationEngine  # noqa: E402
from netweave.observability.logging import configure_logging  # noqa: E402

WORK = ROOT / ".bench"
SUBSCRIPTIONS = "/o2ims-infrastructureInventory/v1/subscriptions"
POOL_FILTER = "(eq,objectType,ResourcePoolInfo)"
RECEIVERS = 10
FAN_OUT = 1000
SUSTAINED_SUBSCRIPTIONS = 20
SUSTAINED_EVENTS = 500

TARGET_P99_MS = 50.0
TARGET_FAN_OUT_S = 1.0
TARGET_RATE = 2000.0

LATENCY_WAIT = 5.0  # seconds one notification may take before the run is abandoned
FAN_OUT_WAIT = 30.0
SUSTAINED_WAIT = 120.0


class BenchError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# Receivers ------------------------------------------------------------------------------


class Arrivals:
    """Every POST any receiver got, as (arrival time, path), in the order read."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._items: list[tuple[float, str]] = []

    def extend(self, items: list[tuple[float, str]]) -> None:
        with self._changed:
            self._items.extend(items)
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self._items)

    def wait(self, since: int, paths: frozenset[str], count: int, timeout: float) -> list[float]:
        """Arrival times on ``paths`` after ``mark() == since``: waits until ``count`` are
        there or ``timeout`` seconds passed (then returns those there are)."""
        found: list[float] = []
        index = since
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                items = self._items
                while index < len(items):
                    at, path = items[index]
                    index += 1
                    if path in paths:
                        found.append(at)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return found
                self._changed.wait(remaining)


def _read_all(streams: list[IO[bytes]], arrivals: Arrivals) -> None:
    """One thread reads every receiver's stdout, in chunks, until all of them are closed
    (one thread and one hand-over per chunk keep the GIL free for the gateway)."""
    selector = selectors.DefaultSelector()
    partial: dict[int, bytes] = {}
    for stream in streams:
        selector.register(stream.fileno(), selectors.EVENT_READ)
        partial[stream.fileno()] = b""
    while partial:
        batch = []
        for key, _ in selector.select():
            fd = key.fd
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                selector.unregister(fd)
                del partial[fd]
                continue
            *lines, partial[fd] = (partial[fd] + chunk).split(b"\n")
            for line in lines:
                at, _, path = line.partition(b" ")
                batch.append((float(at), path.decode()))
        if batch:
            arrivals.extend(batch)
    selector.close()


@dataclass
class Receivers:
    urls: list[str]
    processes: list[subprocess.Popen[bytes]]
    arrivals: Arrivals


@contextlib.contextmanager
def running_receivers(count: int, log: Path) -> Iterator[Receivers]:
    arrivals = Arrivals()
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    script = str(ROOT / "bench" / "receiver_server.py")
    with log.open("ab") as sink:
        try:
            for _ in range(count):
                port = free_port()
                process = subprocess.Popen(
                    [sys.executable, script, str(port)],
                    stdout=subprocess.PIPE,
                    stderr=sink,
                    stdin=subprocess.DEVNULL,
                    cwd=ROOT,
                )
                processes.append(process)
                urls.append(f"http://127.0.0.1:{port}")
            streams = [process.stdout for process in processes if process.stdout is not None]
            threading.Thread(
                target=_read_all, args=(streams, arrivals), name="receiver-lines", daemon=True
            ).start()
            for url, process in zip(urls, processes, strict=True):
                _wait_204(url, process)
            yield Receivers(urls, processes, arrivals)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def _wait_204(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"receiver {url} exited early (code {process.returncode})")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ready", trust_env=False).status_code == 204:
                return
        time.sleep(0.05)
    raise BenchError(f"receiver {url} did not become ready")


# Redis ----------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_url(workdir: Path) -> Iterator[str]:
    """``tests.redisserver.running_redis`` when it is there, else a redis-server of ours."""
    try:
        from tests.redisserver import running_redis
    except ImportError:
        running_redis = None
    if running_redis is not None:
        with running_redis(workdir) as url:
            yield url
        return
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        import redis

        deadline = time.monotonic() + 15
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0) as client:
            while True:
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError("redis-server did not start")
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def redis_cpu_seconds(url: str) -> float:
    import redis

    with redis.Redis.from_url(url, socket_timeout=2.0) as client:
        info: dict[str, Any] = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# The gateway ----------------------------------------------------------------------------


class Gateway:
    """The running gateway, driven from this (the main) thread."""

    def __init__(self, running: RunningGateway) -> None:
        state = running.app.state
        self.loop: asyncio.AbstractEventLoop = state.loop
        self.engine: NotificationEngine = state.notifications
        self.store = state.store
        self.view = state.view
        self.http = httpx.Client(base_url=running.base_url, trust_env=False, timeout=30.0)
        self.thread = next(
            t for t in threading.enumerate() if t.name == f"gateway-{running.settings.port}"
        )
        self._wait(lambda: self.view.ready and self.engine.is_emitter, 30, "emitter lease")
        pools = self.view.entries(ObjectKind.RESOURCE_POOL)
        if not pools:
            raise BenchError("the simulated O-Cloud has no resource pools")
        self.pool = pools[0].model

    def close(self) -> None:
        self.http.close()

    def _wait(self, check: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {seconds} s waiting for {what}")
            time.sleep(0.01)

    def subscribe(self, callbacks: Sequence[str]) -> list[str]:
        def one(callback: str) -> str:
            body = {"callback": callback, "filter": POOL_FILTER}
            response = self.http.post(SUBSCRIPTIONS, json=body)
            if response.status_code != 201:
                raise BenchError(f"subscribe {callback}: {response.status_code} {response.text}")
            subscription_id: str = response.json()["subscriptionId"]
            return subscription_id

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, callbacks))

    def unsubscribe(self, subscription_ids: Sequence[str]) -> None:
        def one(subscription_id: str) -> None:
            response = self.http.delete(f"{SUBSCRIPTIONS}/{subscription_id}")
            if response.status_code != 200:
                raise BenchError(f"delete {subscription_id}: {response.status_code}")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, subscription_ids))

    def events(self, count: int) -> list[InventoryEvent]:
        return [
            InventoryEvent(
                kind=ObjectKind.RESOURCE_POOL,
                type=EventType.MODIFY,
                object_id=self.pool.object_id,
                prior=self.pool,
                post=self.pool.model_copy(update={"description": f"bench {uuid.uuid4()}"}),
            )
            for _ in range(count)
        ]

    def body_size(self) -> int:
        """Bytes of one of these events' notifications, as the receivers get them."""
        from netweave.notifications.payload import prepare_notification
        from netweave.store.base import SubscriptionRecord

        [event] = self.events(1)
        prepared = prepare_notification(event, object_ref="http://127.0.0.1/x")
        subscriber = SubscriptionRecord(subscription_id="bench", callback="http://127.0.0.1/x")
        return len(prepared.render(subscriber, notification_id=str(uuid.uuid4())))

    def emit(self, events: Sequence[InventoryEvent]) -> None:
        """Hand the events to the engine inside the gateway loop, in one callback."""
        self.loop.call_soon_threadsafe(_emit_all, self.engine, events)

    def settle(self, seconds: float = 30.0) -> None:
        """Wait until nothing is pending in the engine nor the outbox."""

        async def idle() -> bool:
            return not self.engine._pending and await self.store.depth() == 0

        def check() -> bool:
            return asyncio.run_coroutine_threadsafe(idle(), self.loop).result(timeout=5)

        self._wait(check, seconds, "the outbox to drain")

    def thread_cpu(self) -> float:
        assert self.thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self.thread.ident))


def _emit_all(engine: NotificationEngine, events: Sequence[InventoryEvent]) -> None:
    for event in events:
        engine.on_event(event)


# The measures ---------------------------------------------------------------------------


@dataclass
class Result:
    store: str
    latency_p50_ms: list[float] = field(default_factory=list)
    latency_p99_ms: list[float] = field(default_factory=list)
    fan_out_s: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    gateway_cpu: list[float] = field(default_factory=list)  # share of one core
    redis_cpu: list[float] = field(default_factory=list)
    baseline_rate: list[float] = field(default_factory=list)  # plain httpx POSTs/s
    error: str | None = None


def measure_latency(gw: Gateway, receivers: Receivers, result: Result, rounds: int, n: int) -> None:
    path = "/latency"
    subscriptions = gw.subscribe([receivers.urls[0] + path])
    try:
        for round_no in range(rounds):
            samples = []
            for event in gw.events(n):
                gw.settle()
                since = receivers.arrivals.mark()
                t0 = time.time()
                gw.emit([event])
                got = receivers.arrivals.wait(since, frozenset([path]), 1, LATENCY_WAIT)
                if not got:
                    raise BenchError(f"no notification within {LATENCY_WAIT} s")
                samples.append((got[0] - t0) * 1000)
            result.latency_p50_ms.append(statistics.median(samples))
            result.latency_p99_ms.append(percentile(samples, 0.99))
            progress(
                f"{result.store} latency round {round_no + 1}: p50 {result.latency_p50_ms[-1]:.1f}"
                f" ms, p99 {result.latency_p99_ms[-1]:.1f} ms, max {max(samples):.1f} ms"
            )
    finally:
        gw.unsubscribe(subscriptions)


def measure_fan_out(gw: Gateway, receivers: Receivers, result: Result, rounds: int) -> None:
    paths = [f"/fan-out/{i}" for i in range(FAN_OUT)]
    callbacks = [receivers.urls[i % len(receivers.urls)] + path for i, path in enumerate(paths)]
    started = time.monotonic()
    subscriptions = gw.subscribe(callbacks)
    progress(f"{result.store} {FAN_OUT} subscriptions made in {time.monotonic() - started:.1f} s")
    try:
        wanted = frozenset(paths)
        for round_no in range(rounds):
            gw.settle()
            (event,) = gw.events(1)
            since = receivers.arrivals.mark()
            t0 = time.time()
            gw.emit([event])
            got = receivers.arrivals.wait(since, wanted, FAN_OUT, FAN_OUT_WAIT)
            if len(got) < FAN_OUT:
                raise BenchError(f"fan-out: {len(got)}/{FAN_OUT} arrived in {FAN_OUT_WAIT} s")
            result.fan_out_s.append(max(got) - t0)
            progress(
                f"{result.store} fan-out round {round_no + 1}: {result.fan_out_s[-1]:.3f} s "
                f"(first arrival {min(got) - t0:.3f} s)"
            )
    finally:
        gw.unsubscribe(subscriptions)


def measure_sustained(
    gw: Gateway, receivers: Receivers, result: Result, rounds: int, redis: str | None
) -> None:
    paths = [f"/sustained/{i}" for i in range(SUSTAINED_SUBSCRIPTIONS)]
    callbacks = [receivers.urls[i % len(receivers.urls)] + path for i, path in enumerate(paths)]
    subscriptions = gw.subscribe(callbacks)
    total = SUSTAINED_SUBSCRIPTIONS * SUSTAINED_EVENTS
    try:
        wanted = frozenset(paths)
        for round_no in range(rounds):
            gw.settle()
            events = gw.events(SUSTAINED_EVENTS)
            redis_before = redis_cpu_seconds(redis) if redis else 0.0
            since = receivers.arrivals.mark()
            cpu_before = gw.thread_cpu()
            t0 = time.time()
            gw.emit(events)
            got = receivers.arrivals.wait(since, wanted, total, SUSTAINED_WAIT)
            if len(got) < total:
                raise BenchError(f"sustained: {len(got)}/{total} arrived in {SUSTAINED_WAIT} s")
            elapsed = max(got) - t0
            cpu = gw.thread_cpu() - cpu_before
            result.rate.append(total / elapsed)
            result.gateway_cpu.append(cpu / elapsed)
            line = (
                f"{result.store} sustained round {round_no + 1}: {total} in {elapsed:.2f} s = "
                f"{result.rate[-1]:,.0f}/s, gateway loop thread CPU {cpu / elapsed:.0%}"
            )
            if redis:
                result.redis_cpu.append((redis_cpu_seconds(redis) - redis_before) / elapsed)
                line += f", redis-server CPU {result.redis_cpu[-1]:.0%}"
            progress(line)
    finally:
        gw.unsubscribe(subscriptions)


def measure_httpx_baseline(
    receivers: Receivers, result: Result, rounds: int, concurrency: int, body_size: int
) -> None:
    """The baseline of the sustained figure: plain httpx POSTs of a body of the same size
    to the same receivers, ``concurrency`` at a time, with a client per receiver as the
    gateway keeps, on uvloop, and no gateway work at all."""
    import uvloop

    body = b"x" * body_size
    total = SUSTAINED_SUBSCRIPTIONS * SUSTAINED_EVENTS

    async def post_all() -> float:
        clients = [
            httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=concurrency))
            for _ in receivers.urls
        ]
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                which = index % len(receivers.urls)
                response = await clients[which].post(
                    f"{receivers.urls[which]}/baseline/{index % SUSTAINED_SUBSCRIPTIONS}",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code != 204:
                    raise BenchError(f"baseline: receiver answered {response.status_code}")

        try:
            started = time.perf_counter()
            await asyncio.gather(*(one(index) for index in range(total)))
            return total / (time.perf_counter() - started)
        finally:
            for client in clients:
                await client.aclose()

    for round_no in range(rounds):
        result.baseline_rate.append(uvloop.run(post_all()))
        progress(
            f"{result.store} baseline round {round_no + 1}: plain httpx "
            f"{result.baseline_rate[-1]:,.0f} POSTs/s"
        )


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_store(store: str, args: argparse.Namespace, workdir: Path) -> Result:
    result = Result(store)
    log = WORK / "notifications-receivers.log"
    with contextlib.ExitStack() as stack:
        redis: str | None = None
        settings: dict[str, object] = {
            "access_log": False,
            "callback_allowlist": "127.0.0.1",
            "delivery_concurrency": args.concurrency,
        }
        if store == "redis":
            redis = stack.enter_context(redis_url(workdir / "redis"))
            settings["redis_url"] = redis
            settings["store_prefix"] = f"netweave-bench-{uuid.uuid4().hex[:8]}"
        receivers = stack.enter_context(running_receivers(RECEIVERS, log))
        # uvloop, as `netweave serve` runs it
        running = stack.enter_context(serve_gateway(loop="uvloop", **settings))
        gw = Gateway(running)
        stack.callback(gw.close)
        measure_latency(gw, receivers, result, args.rounds, args.events)
        measure_fan_out(gw, receivers, result, args.rounds)
        measure_sustained(gw, receivers, result, args.rounds, redis)
        measure_httpx_baseline(
            receivers, result, args.rounds, args.concurrency, body_size=gw.body_size()
        )
    return result


# Report ---------------------------------------------------------------------------------


def table(results: list[Result]) -> list[str]:
    rows = ["| store | measure | value | target | met |", "|---|---|---:|---:|---|"]

    def row(store: str, what: str, value: str, target: str, met: bool | None) -> None:
        verdict = "" if met is None else ("met" if met else "**not met**")
        rows.append(f"| {store} | {what} | {value} | {target} | {verdict} |")

    for r in results:
        if r.error is not None:
            row(r.store, "(not run)", r.error, "", None)
            continue
        p50, p99 = statistics.median(r.latency_p50_ms), statistics.median(r.latency_p99_ms)
        fan, rate = statistics.median(r.fan_out_s), statistics.median(r.rate)
        row(r.store, "event to callback, 1 subscriber, p50", f"{p50:.1f} ms", "", None)
        row(r.store, "event to callback, 1 subscriber, p99", f"{p99:.1f} ms", "< 50 ms", p99 < 50)
        row(r.store, f"fan-out of 1 event to {FAN_OUT} subscribers", f"{fan:.2f} s",
            "< 1 s", fan < TARGET_FAN_OUT_S)  # fmt: skip
        row(r.store, "sustained deliveries/s (one replica)", f"{rate:,.0f}/s", "≥ 2,000/s",
            rate >= TARGET_RATE)  # fmt: skip
        if r.baseline_rate:
            base = statistics.median(r.baseline_rate)
            row(r.store, "baseline: plain httpx POSTs/s to the same receivers",
                f"{base:,.0f}/s", "", None)  # fmt: skip
            row(r.store, "sustained / baseline", f"{rate / base:.0%}", "", None)
        cpu = f"{statistics.median(r.gateway_cpu):.0%} of a core"
        if r.redis_cpu:
            cpu += f" (redis-server {statistics.median(r.redis_cpu):.0%})"
        row(r.store, "gateway event-loop CPU while sustained", cpu, "", None)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["memory", "redis", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measure")
    parser.add_argument("--events", type=int, default=200, help="latency samples per round")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="NETWEAVE_DELIVERY_CONCURRENCY (default 64)"
    )
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    configure_logging(level="warning")
    stores = ["memory", "redis"] if args.store == "both" else [args.store]
    results = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="netweave-bench-") as workdir:
        for store in stores:
            try:
                results.append(run_store(store, args, Path(workdir)))
            except Exception as exc:  # a store not usable yet must not hide the other
                progress(f"{store}: {type(exc).__name__}: {exc}")
                results.append(Result(store, error=f"failed: {type(exc).__name__}: {exc}"))
    command = shlex.join(["python", "bench/notifications.py", *sys.argv[1:]])
    lines = table(results)
    print(f"\n`{command}` ({time.monotonic() - started:.0f} s), medians of {args.rounds} rounds:\n")
    print("\n".join(lines))
    (WORK / "notifications.json").write_text(
        json.dumps({"command": command, "results": [asdict(r) for r in results]}, indent=2)
    )
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
