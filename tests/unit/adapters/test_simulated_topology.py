"""The simulated O-Cloud's topology: determinism, stable ids, counts, referential integrity."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from netweave.adapters.simulated.catalog import POOLS
from netweave.adapters.simulated.topology import Topology, build_topology
from netweave.models.ids import default_ocloud_id
from netweave.models.inventory import MODEL_OF_KIND, InventoryModel, ObjectKind, Resource

OCLOUD_ID = default_ocloud_id("demo")


@pytest.fixture(scope="module")
def topology() -> Topology:
    return build_topology(OCLOUD_ID)


def all_objects(topology: Topology) -> list[InventoryModel]:
    return [obj for objects in topology.objects().values() for obj in objects]


def wire_digest(topology: Topology) -> str:
    wire = {kind.value: [o.to_wire() for o in objs] for kind, objs in topology.objects().items()}
    return hashlib.sha256(json.dumps(wire, sort_keys=True).encode()).hexdigest()


# -- determinism and ids -------------------------------------------------------------------


def test_two_builds_are_equal(topology: Topology) -> None:
    again = build_topology(OCLOUD_ID)
    assert again == topology
    assert wire_digest(again) == wire_digest(topology)


def test_build_is_identical_in_another_process(topology: Topology) -> None:
    script = (
        "import hashlib, json\n"
        "from netweave.adapters.simulated.topology import build_topology\n"
        f"t = build_topology({OCLOUD_ID!r})\n"
        "wire = {k.value: [o.to_wire() for o in v] for k, v in t.objects().items()}\n"
        "print(hashlib.sha256(json.dumps(wire, sort_keys=True).encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == wire_digest(topology)


def test_ids_are_uuid5_and_unique(topology: Topology) -> None:
    ids: list[str] = []
    for obj in all_objects(topology):
        if obj.kind is ObjectKind.LOCATION:
            continue  # a location's id is its globalLocationId
        ids.append(obj.object_id)
        if isinstance(obj, Resource):
            ids.extend(element.resource_id for element in obj.elements)
    assert len(ids) == len(set(ids))
    for object_id in ids:
        parsed = uuid.UUID(object_id)
        assert parsed.version == 5
        assert str(parsed) == object_id


def test_known_ids_match_an_independent_uuid5(topology: Topology) -> None:
    namespace = uuid.UUID(OCLOUD_ID)
    node = next(n for n in topology.nodes if n.extensions["hostname"] == "mad-ran-edge-01")
    assert node.resource_id == str(uuid.uuid5(namespace, "node:mad-ran-edge-01"))
    assert node.resource_id == "e45149ed-7134-5231-bf31-e4325d700c36"
    dm = topology.deployment_manager
    assert dm.deployment_manager_id == str(uuid.uuid5(namespace, "deployment-manager:ocloud-k8s-1"))
    pool = next(p for p in topology.pools if p.name == "dal-storage")
    assert pool.resource_pool_id == str(uuid.uuid5(namespace, "resource-pool:dal-storage"))


def test_the_seed_varies_details_but_not_ids(topology: Topology) -> None:
    other = build_topology(OCLOUD_ID, seed=7)
    assert [n.resource_id for n in other.nodes] == [n.resource_id for n in topology.nodes]
    assert [n.global_asset_id for n in other.nodes] != [n.global_asset_id for n in topology.nodes]
    assert other.pools == topology.pools
    assert other.resource_types == topology.resource_types


def test_another_ocloud_gets_other_ids(topology: Topology) -> None:
    other = build_topology(default_ocloud_id("other"))
    assert {n.resource_id for n in other.nodes}.isdisjoint(n.resource_id for n in topology.nodes)
    assert other.deployment_manager.o_cloud_id == default_ocloud_id("other")


# -- shape ---------------------------------------------------------------------------------


def test_counts(topology: Topology) -> None:
    assert len(topology.locations) == 3
    assert {loc.extensions["country"] for loc in topology.locations} == {"ES", "US", "JP"}
    assert [loc.global_location_id for loc in topology.locations] == [
        "ES-MAD-1",
        "US-DAL-1",
        "JP-TYO-1",
    ]
    assert len(topology.sites) == 3
    assert len(topology.pools) == 7
    assert len(topology.nodes) == 29
    compute = [t for t in topology.resource_types if t.resource_class == "COMPUTE"]
    servers = [t for t in compute if t.extensions.get("instanceType")]
    storage = [t for t in topology.resource_types if t.resource_class == "STORAGE"]
    assert len(servers) == 7
    assert {t.resource_kind for t in servers} == {"PHYSICAL"}
    assert {t.vendor for t in servers} == {
        "Dell Inc.",
        "Hewlett Packard Enterprise",
        "Super Micro Computer, Inc.",
    }
    assert {t.name for t in storage} == {"ceph-rbd", "cephfs", "local-nvme"}
    assert {t.resource_kind for t in storage} == {"LOGICAL"}
    assert sum(t.extensions["isDefault"] for t in storage) == 1


def test_every_object_validates_against_its_model(topology: Topology) -> None:
    objects = topology.objects()
    assert set(objects) == set(MODEL_OF_KIND)
    for kind, items in objects.items():
        model = MODEL_OF_KIND[kind]
        for obj in items:
            assert type(obj) is model
            wire = json.loads(json.dumps(obj.to_wire()))
            assert model.model_validate(wire) == obj


# -- referential integrity -----------------------------------------------------------------


def test_resources_point_at_existing_pools_and_types(topology: Topology) -> None:
    pools = {p.resource_pool_id for p in topology.pools}
    types = {t.resource_type_id: t for t in topology.resource_types}
    for node in topology.nodes:
        assert node.resource_pool_id in pools
        assert types[node.resource_type_id].resource_class == "COMPUTE"
        assert types[node.resource_type_id].resource_kind == "PHYSICAL"
        assert node.elements
        for element in node.elements:
            assert element.resource_pool_id == node.resource_pool_id
            assert element.resource_type_id in types
    assert {n.resource_pool_id for n in topology.nodes} == pools


def test_sites_list_their_pools_and_pools_their_sites(topology: Topology) -> None:
    sites = {s.o_cloud_site_id: s for s in topology.sites}
    locations = {loc.global_location_id: loc for loc in topology.locations}
    for pool in topology.pools:
        assert pool.o_cloud_id == OCLOUD_ID
        assert pool.o_cloud_site_id is not None
        site = sites[pool.o_cloud_site_id]
        assert pool.resource_pool_id in site.resource_pools
        assert pool.global_location_id == site.global_location_id
        assert {"zone", "region", "country"} <= pool.extensions.keys()
    for site in sites.values():
        listed = {
            p.resource_pool_id for p in topology.pools if p.o_cloud_site_id == site.o_cloud_site_id
        }
        assert set(site.resource_pools) == listed
        assert locations[site.global_location_id].o_cloud_site_ids == [site.o_cloud_site_id]


def test_deployment_manager_covers_every_location_and_sums_capacity(topology: Topology) -> None:
    dm = topology.deployment_manager
    assert dm.o_cloud_id == OCLOUD_ID
    assert dm.service_uri == "https://api.ocloud.example:6443"
    assert dm.supported_locations == [loc.global_location_id for loc in topology.locations]
    nodes = topology.nodes
    assert dm.capacity == {
        "nodes": str(len(nodes)),
        "cpu": str(sum(n.extensions["cpuThreads"] for n in nodes)),
        "cpuCores": str(sum(n.extensions["cpuCores"] for n in nodes)),
        "memoryGiB": str(sum(n.extensions["memoryGiB"] for n in nodes)),
        "gpu": str(sum(n.extensions.get("gpuCount", 0) for n in nodes)),
    }
    assert dm.capacity["gpu"] == "8"
    assert all(isinstance(v, str) for v in (*dm.capabilities.values(), *dm.capacity.values()))


# -- believability -------------------------------------------------------------------------


def test_nodes_are_unique_and_ready(topology: Topology) -> None:
    nodes = topology.nodes
    for attribute in ("hostname", "internalIP", "bmcAddress"):
        assert len({n.extensions[attribute] for n in nodes}) == len(nodes), attribute
    assert len({n.global_asset_id for n in nodes}) == len(nodes)
    macs = [
        mac
        for n in nodes
        for e in n.elements
        if e.extensions["role"] == "nic"
        for mac in e.extensions["macAddresses"]
    ]
    assert len(set(macs)) == len(macs)
    assert {n.extensions["status"] for n in nodes} == {"Ready"}


def test_node_details_follow_the_pool(topology: Topology) -> None:
    by_pool = {p.resource_pool_id: p.name for p in topology.pools}
    for node in topology.nodes:
        pool = by_pool[node.resource_pool_id]
        ext = node.extensions
        assert ext["hostname"].startswith(f"{pool}-")
        assert ext["labels"]["o2ims.oran.org/resource-pool"] == pool
        assert ext["labels"]["kubernetes.io/hostname"] == ext["hostname"]
        assert pool in node.groups
        assert ext["nics"]
        assert all(nic["ptpCapable"] for nic in ext["nics"])
        if pool.endswith("ran-edge"):
            assert ext["kernelVersion"].endswith("-realtime")
        if pool == "tyo-ran-edge":
            assert ext["gpuCount"] == 2
            assert ext["gpuModel"] == "NVIDIA A100X Converged Accelerator"
            assert sum(e.extensions["role"] == "gpu" for e in node.elements) == 2
        else:
            assert "gpuCount" not in ext
    per_pool = Counter(by_pool[node.resource_pool_id] for node in topology.nodes)
    assert per_pool == {pool.name: pool.nodes for pool in POOLS}
