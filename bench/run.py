"""Load benchmark of the standard inventory reads, against a raw-ASGI baseline.

Starts the gateway (``python -m netweave serve``, default settings: one uvicorn worker
with uvloop and httptools, JSON access log on) and a raw ASGI app that answers the very
same bytes on the same uvicorn configuration, then drives both with ``wrk`` on loopback
in alternating rounds and reports the median requests/s, p50 and p99 of each, and the
gateway/raw ratio.  Everything listens on 127.0.0.1 and stops when the run ends.

    python bench/run.py [--rounds 5] [--duration 10] [--connections 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench"
INV = "/o2ims-infrastructureInventory/v1"
RESOURCE_FILTER = "(eq,extensions/architecture,x86_64);(gte,extensions/memoryGiB,128)"

TARGET_RPS = 5000.0
TARGET_P99_MS = 20.0
TARGET_RATIO = 0.40


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early (code {process.returncode}); see {WORK}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, trust_env=False).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"server at {url} did not become ready")


@contextlib.contextmanager
def running(cmd: list[str], *, env: dict[str, str], log: Path, ready_url: str) -> Iterator[None]:
    with log.open("wb") as sink:
        process = subprocess.Popen(cmd, env=env, stdout=sink, stderr=sink, cwd=ROOT)
        try:
            wait_http(ready_url, process)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, duration: int, connections: int) -> Sample:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors against {url}:\n{out}")
    rps = _RPS.search(out)
    latencies = {
        m.group(1): float(m.group(2)) * _UNIT_MS[m.group(3)] for m in _LATENCY.finditer(out)
    }
    if rps is None or set(latencies) != {"50", "99"}:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    return Sample(float(rps.group(1)), latencies["50"], latencies["99"])


@dataclass
class ScenarioResult:
    path: str
    gateway_rounds: list[Sample]
    raw_rounds: list[Sample]

    @property
    def gateway(self) -> Sample:
        return median(self.gateway_rounds)

    @property
    def raw(self) -> Sample:
        return median(self.raw_rounds)

    @property
    def ratio(self) -> float:
        return self.gateway.rps / self.raw.rps

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "gateway": asdict(self.gateway),
            "raw": asdict(self.raw),
            "ratio": self.ratio,
            "gateway_rounds": [asdict(s) for s in self.gateway_rounds],
            "raw_rounds": [asdict(s) for s in self.raw_rounds],
        }


def median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.rps for s in samples),
        statistics.median(s.p50_ms for s in samples),
        statistics.median(s.p99_ms for s in samples),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per target")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make bench` (it installs it) first")
    WORK.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    gw_port, raw_port = free_port(), free_port()
    gw = f"http://127.0.0.1:{gw_port}"
    raw = f"http://127.0.0.1:{raw_port}"
    results: dict[str, ScenarioResult] = {}

    gw_env = {**env, "NETWEAVE_PORT": str(gw_port)}
    with running(
        [sys.executable, "-m", "netweave", "serve"],
        env=gw_env,
        log=WORK / "gateway.log",
        ready_url=f"{gw}/readyz",
    ):
        pools = httpx.get(f"{gw}{INV}/resourcePools", trust_env=False).json()
        biggest = max(
            pools,
            key=lambda p: len(
                httpx.get(
                    f"{gw}{INV}/resourcePools/{p['resourcePoolId']}/resources", trust_env=False
                ).json()
            ),
        )
        query = str(httpx.QueryParams({"filter": RESOURCE_FILTER}))
        scenarios = {
            "pool list": f"{INV}/resourcePools",
            "filtered resources of a pool": (
                f"{INV}/resourcePools/{biggest['resourcePoolId']}/resources?{query}"
            ),
        }
        bodies = {}
        for name, path in scenarios.items():
            response = httpx.get(f"{gw}{path}", trust_env=False)
            response.raise_for_status()
            bodies[path] = response.content.decode()
            print(
                f"{name}: {path} -> {len(response.content)} bytes, {len(response.json())} objects"
            )
        routes_file = WORK / "raw-routes.json"
        routes_file.write_text(json.dumps(bodies))
        raw_cmd = [sys.executable, "-m", "bench.raw_server", str(routes_file), str(raw_port)]
        with running(raw_cmd, env=env, log=WORK / "raw.log", ready_url=f"{raw}/readyz"):
            for name, path in scenarios.items():
                for base in (gw, raw):  # warm-up
                    wrk(f"{base}{path}", duration=2, connections=args.connections)
                gateway_runs: list[Sample] = []
                raw_runs: list[Sample] = []
                for round_no in range(1, args.rounds + 1):
                    for base, runs in ((gw, gateway_runs), (raw, raw_runs)):
                        runs.append(
                            wrk(
                                f"{base}{path}",
                                duration=args.duration,
                                connections=args.connections,
                            )
                        )
                    print(
                        f"  {name} round {round_no}: gateway {gateway_runs[-1].rps:,.0f} req/s,"
                        f" raw {raw_runs[-1].rps:,.0f} req/s",
                        flush=True,
                    )
                results[name] = ScenarioResult(path, gateway_runs, raw_runs)
        metrics = httpx.get(f"{gw}/metrics", trust_env=False).text
    hits = _counter(metrics, 'netweave_inventory_cache_lookups_total{result="hit"}')
    misses = _counter(metrics, 'netweave_inventory_cache_lookups_total{result="miss"}')
    cache_ratio = hits / (hits + misses) if hits + misses else 0.0

    print()
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s, median of {args.rounds} rounds, "
        f"one uvicorn worker each"
    )
    print("| scenario | gateway req/s | p50 ms | p99 ms | raw ASGI req/s | raw p99 ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, result in results.items():
        g, r = result.gateway, result.raw
        print(
            f"| {name} | {g.rps:,.0f} | {g.p50_ms:.2f} | {g.p99_ms:.2f} | "
            f"{r.rps:,.0f} | {r.p99_ms:.2f} | {result.ratio:.0%} |"
        )
    print(f"inventory page-cache hit ratio during the run: {cache_ratio:.1%}")
    pool = results["pool list"]
    verdicts = {
        f"pool list >= {TARGET_RPS:,.0f} req/s": pool.gateway.rps >= TARGET_RPS,
        f"pool list p99 < {TARGET_P99_MS:.0f} ms": pool.gateway.p99_ms < TARGET_P99_MS,
        f"pool list >= {TARGET_RATIO:.0%} of raw ASGI": pool.ratio >= TARGET_RATIO,
    }
    for target, met in verdicts.items():
        print(f"target {target}: {'met' if met else 'NOT met'}")
    (WORK / "results.json").write_text(
        json.dumps(
            {
                "results": {name: result.as_json() for name, result in results.items()},
                "cache_hit_ratio": cache_ratio,
                "targets": verdicts,
            },
            indent=2,
        )
    )
    print(f"details: {WORK / 'results.json'}")
    return 0


def _counter(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


if __name__ == "__main__":
    sys.exit(main())
