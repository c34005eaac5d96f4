"""Scale benchmark of the Kubernetes backend against a real kube-apiserver on loopback.

Fills a fresh test API server (``scripts/kube-apiserver.sh``) with ``--nodes`` Nodes and
``--machinesets`` cluster-api MachineSets (the nodes spread over the MachineSets through
the cluster-api owner annotations, a tenth of them in a label pool instead), then starts
``netweave serve`` with ``NETWEAVE_BACKEND=kubernetes`` and measures

* time from process start to ``/readyz`` 200, and resident memory once ready;
* ``GET …/resourcePools/{id}/resources`` under ``wrk -t1 -c50`` load: req/s, p50, p99;
* watch-event-to-view latency: a node label is patched and the resource is polled until
  the API shows the new value; p50/p99 over ``--samples`` patches.

    python bench/kube_scale.py [--nodes 5000] [--machinesets 50] [--samples 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kubeapi import (  # noqa: E402
    MACHINESET_CRD,
    KubeAPIServer,
    build_kube_apiserver,
    running_kube_apiserver,
)

from bench.run import free_port, wrk  # noqa: E402
from netweave.adapters.kubernetes import mapping  # noqa: E402
from netweave.models.ids import default_ocloud_id  # noqa: E402

INV = "/o2ims-infrastructureInventory/v1"
NAMESPACE = "default"


def machineset(index: int, replicas: int) -> dict[str, object]:
    name = f"ms-{index:02d}"
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineSet",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "clusterName": "scale",
            "replicas": replicas,
            "selector": {"matchLabels": {"bench/machineset": name}},
            "template": {
                "metadata": {"labels": {"bench/machineset": name}},
                "spec": {"clusterName": "scale", "failureDomain": f"zone-{index % 3}"},
            },
        },
    }


def node(index: int, owner: str | None) -> dict[str, object]:
    name = f"node-{index:05d}"
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "node.kubernetes.io/instance-type": ["m5.2xlarge", "m5.4xlarge", "c5.9xlarge"][index % 3],
        "topology.kubernetes.io/zone": f"zone-{index % 3}",
    }
    annotations = {}
    if owner is None:
        labels["o2ims.oran.org/resource-pool"] = "label-pool"
    else:
        annotations = {
            "cluster.x-k8s.io/owner-kind": "MachineSet",
            "cluster.x-k8s.io/owner-name": owner,
            "cluster.x-k8s.io/cluster-namespace": NAMESPACE,
        }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"providerID": f"aws:///zone-{index % 3}/i-{index:017x}"},
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "7800m", "memory": "31Gi", "pods": "110"},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}
            ],
            "nodeInfo": {"architecture": "amd64", "osImage": "Bottlerocket OS 1.19"},
        },
    }


def install_machineset_crd(api: KubeAPIServer) -> None:
    with api.client() as admin:
        admin.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=MACHINESET_CRD)
        deadline = time.monotonic() + 30
        while admin.get("/apis/cluster.x-k8s.io/v1beta1").status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit("the MachineSet CRD was not served")
            time.sleep(0.2)


async def populate(api: KubeAPIServer, nodes: int, machinesets: int) -> None:
    labelled = nodes // 10
    per_set = (nodes - labelled) // max(machinesets, 1)
    ssl_context = api.ssl_context()
    headers = {"Authorization": f"Bearer {api.admin_token}"}
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(
        base_url=api.url, verify=ssl_context, headers=headers, limits=limits, trust_env=False
    ) as client:
        gate = asyncio.Semaphore(16)

        async def post(path: str, body: dict[str, object]) -> None:
            async with gate:
                response = await client.post(path, json=body)
                if response.status_code != 201:
                    raise SystemExit(f"POST {path}: {response.status_code} {response.text[:200]}")

        ms_path = f"/apis/cluster.x-k8s.io/v1beta1/namespaces/{NAMESPACE}/machinesets"
        await asyncio.gather(*(post(ms_path, machineset(i, per_set)) for i in range(machinesets)))
        owners = [
            f"ms-{i // per_set:02d}" if i < per_set * machinesets else None for i in range(nodes)
        ]
        await asyncio.gather(*(post("/api/v1/nodes", node(i, owners[i])) for i in range(nodes)))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def view_latency(api: KubeAPIServer, gw: str, samples: int) -> list[float]:
    ctx = mapping.MappingContext(
        ocloud_id=default_ocloud_id("netweave-ocloud"), cluster_name="", api_server_url=""
    )
    latencies = []
    with api.client() as admin, httpx.Client(base_url=gw, trust_env=False) as client:
        target = admin.get("/api/v1/nodes/node-00000").json()
        resource_id = mapping.node_resource_id(target, ctx)
        pools = client.get(f"{INV}/resourcePools").json()
        pool_of = {}
        for pool in pools:
            got = client.get(
                f"{INV}/resourcePools/{pool['resourcePoolId']}/resources/{resource_id}"
            )
            if got.status_code == 200:
                pool_of = pool
                break
        url = f"{INV}/resourcePools/{pool_of['resourcePoolId']}/resources/{resource_id}"
        for sample in range(samples):
            value = f"v{sample}"
            patch = {"metadata": {"labels": {"bench/seq": value}}}
            started = time.perf_counter()
            response = admin.patch(
                "/api/v1/nodes/node-00000",
                json=patch,
                headers={"Content-Type": "application/merge-patch+json"},
            )
            response.raise_for_status()
            while True:
                labels = client.get(url).json()["extensions"].get("labels", {})
                if labels.get("bench/seq") == value:
                    break
                if time.perf_counter() - started > 10:
                    raise SystemExit("a node change did not reach the view within 10 s")
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--machinesets", type=int, default=50)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    build_kube_apiserver()
    with tempfile.TemporaryDirectory(prefix="netweave-scale-") as workdir:
        with running_kube_apiserver(Path(workdir)) as api:
            started = time.monotonic()
            install_machineset_crd(api)
            asyncio.run(populate(api, args.nodes, args.machinesets))
            print(
                f"created {args.nodes} nodes and {args.machinesets} MachineSets "
                f"in {time.monotonic() - started:.1f} s"
            )
            port = free_port()
            gw = f"http://127.0.0.1:{port}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
            env.update(
                NETWEAVE_PORT=str(port),
                NETWEAVE_BACKEND="kubernetes",
                NETWEAVE_KUBECONFIG=str(api.kubeconfig),
                NETWEAVE_ACCESS_LOG="false",
            )
            log = ROOT / ".bench" / "kube-gateway.log"
            log.parent.mkdir(exist_ok=True)
            spawn = time.monotonic()
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "netweave", "serve"], env=env, stdout=sink, stderr=sink
                )
            try:
                while True:
                    try:
                        if httpx.get(f"{gw}/readyz", trust_env=False).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if process.poll() is not None or time.monotonic() - spawn > 180:
                        raise SystemExit(f"the gateway did not become ready; see {log}")
                    time.sleep(0.05)
                ready_s = time.monotonic() - spawn
                rss = rss_mib(process.pid)
                with httpx.Client(base_url=gw, trust_env=False) as client:
                    pools = client.get(f"{INV}/resourcePools").json()
                    counts = {
                        p["resourcePoolId"]: int(
                            client.get(
                                f"{INV}/resourcePools/{p['resourcePoolId']}/resources"
                            ).headers["x-total-count"]
                        )
                        for p in pools
                    }
                    total = sum(counts.values())
                busiest = max(counts, key=lambda pool_id: counts[pool_id])
                load = wrk(
                    f"{gw}{INV}/resourcePools/{busiest}/resources",
                    duration=args.duration,
                    connections=50,
                )
                latencies = view_latency(api, gw, args.samples)
                rss_after = rss_mib(process.pid)
            finally:
                process.terminate()
                process.wait(timeout=30)
    print(f"pools: {len(pools)}, resources: {total}")
    print("| measure | value | target |")
    print("|---|---:|---:|")
    print(f"| start to ready | {ready_s:.1f} s | < 15 s |")
    print(f"| resident memory when ready | {rss:.0f} MiB | < 400 MB |")
    print(f"| resident memory after the load | {rss_after:.0f} MiB | < 400 MB |")
    print(
        f"| GET resources of a pool ({counts[busiest]} nodes) | {load.rps:,.0f} req/s, "
        f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms | |"
    )
    print(f"| watch event to view, p50 | {statistics.median(latencies):.0f} ms | |")
    print(f"| watch event to view, p99 | {percentile(latencies, 0.99):.0f} ms | < 250 ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
