"""The pure Kubernetes -> O2-IMS mapping, over recorded Kubernetes objects.

The fixtures in ``kubernetes_fixtures/`` are shaped like objects read from real clusters
(kind, EKS, OpenShift bare metal, cluster-api on Metal3), managedFields, resourceVersions,
heartbeats and images included.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from netweave.adapters.kubernetes.mapping import (
    NODE_ANNOTATIONS,
    MappingContext,
    NodeShape,
    cluster_capacity,
    deployment_manager_for_cluster,
    label_pool_id,
    machineset_key,
    machineset_pool_id,
    node_shape,
    parse_quantity,
    pool_id_for_node,
    pool_label_value,
    resource_for_node,
    resource_pool_for_label,
    resource_pool_for_machineset,
    resource_type_for_shape,
    resource_type_for_storage_class,
    storage_class_is_default,
)
from netweave.models.ids import NETWEAVE_NAMESPACE, default_ocloud_id
from netweave.models.inventory import InventoryModel

FIXTURES = Path(__file__).parent / "kubernetes_fixtures"
OCLOUD = default_ocloud_id("k8s-mapping-tests")
CTX = MappingContext(
    ocloud_id=OCLOUD,
    cluster_name="ran-core-prod",
    api_server_url="https://api.ran-core-prod.example.com:6443",
    global_location_id="ES-MAD-DC1",
    location="Madrid DC1",
)

NODE_FILES = (
    "node-kind-control-plane.json",
    "node-kind-worker.json",
    "node-kind-worker2.json",
    "node-eks.json",
    "node-openshift.json",
    "node-capi-metal3.json",
)
STORAGE_CLASS_FILES = ("storageclass-standard.json", "storageclass-gp3.json")

Json = dict[str, Any]


def load(name: str) -> Json:
    """A fresh copy of a recorded object (tests may mutate it)."""
    loaded: Json = json.loads((FIXTURES / name).read_text())
    return loaded


def uid(obj: Json) -> str:
    return str(obj["metadata"]["uid"])


def expected_id(kind: str, key: str) -> str:
    """The id scheme, computed without netweave: UUIDv5 of ``kind:key`` under the O-Cloud."""
    return str(uuid.uuid5(uuid.UUID(OCLOUD), f"{kind}:{key}"))


def machinesets() -> dict[tuple[str, str], Json]:
    machineset = load("machineset-edge-du.json")
    return {machineset_key(machineset): machineset}


def node_resource(node: Json) -> Json:
    """The wire form of a node's resource, in the pool the mapping assigns it."""
    pool = pool_id_for_node(node, CTX, machinesets())
    return resource_for_node(node, CTX, pool_id=pool).to_wire()


def condition(node: Json, kind: str) -> Json:
    return next(c for c in node["status"]["conditions"] if c["type"] == kind)


def assert_round_trips(model: InventoryModel) -> None:
    """The model validates from its own wire form and serialises back identically."""
    wire = model.to_wire()
    again = type(model).model_validate(wire)
    assert again == model
    assert again.to_wire() == wire
    assert json.loads(json.dumps(wire)) == wire  # plain JSON all the way down


# --------------------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", Decimal(4)),
        ("0", Decimal(0)),
        ("3800m", Decimal("3.8")),
        ("7910m", Decimal("7.91")),
        ("16Gi", Decimal(16 * 2**30)),
        ("16384Mi", Decimal(16 * 2**30)),
        ("16G", Decimal(16 * 10**9)),
        ("1.5Ti", Decimal(3 * 2**39)),
        ("125952248Ki", Decimal(125952248 * 1024)),
        ("100e6", Decimal(100_000_000)),
        ("1E3", Decimal(1000)),
        ("25e-2", Decimal("0.25")),
        ("1E", Decimal(10**18)),
        ("2Ei", Decimal(2 * 2**60)),
        ("500k", Decimal(500_000)),
        ("76224326324", Decimal(76224326324)),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("+1Ki", Decimal(1024)),
        ("-2M", Decimal(-2_000_000)),
        (
            "12345678901234567890123456789012345Ki",
            Decimal(12345678901234567890123456789012345 * 1024),
        ),
    ],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 4",
        "4 ",
        "1 Gi",
        "Gi",
        ".",
        "1.2.3",
        "1e",
        "1e+",
        "1ee3",
        "e3",
        "1KI",
        "1K",
        "1gi",
        "1Mb",
        "1mi",
        "0x10",
        "1,5Gi",
        "١٢",  # Arabic-Indic digits: Decimal would take them, Kubernetes does not
        "1e1000",
        "NaN",
        "Infinity",
    ],
)
def test_parse_quantity_rejects_invalid_input(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)


# --------------------------------------------------------------------------- ids


def test_id_scheme_is_uuid5_of_kind_and_backend_identity() -> None:
    worker = load("node-kind-worker.json")
    machineset = load("machineset-edge-du.json")
    gp3 = load("storageclass-gp3.json")
    namespace = load("namespace-kube-system.json")
    eks = load("node-eks.json")

    # one value pinned literally, so a change of the scheme itself cannot go unnoticed
    assert OCLOUD == str(uuid.uuid5(NETWEAVE_NAMESPACE, "ocloud:k8s-mapping-tests"))
    assert OCLOUD == "9e7eb667-bd3d-56e0-9bcf-cfe187619a0b"
    resource = resource_for_node(worker, CTX, pool_id=label_pool_id(None, CTX))
    assert resource.resource_id == "8fb21cb4-f62d-5aca-9094-291996ed928c"
    assert resource.resource_id == expected_id("node", uid(worker))

    assert machineset_pool_id(machineset, CTX) == expected_id("machineset", uid(machineset))
    assert label_pool_id("core-upf", CTX) == expected_id("label-pool", "core-upf")
    assert label_pool_id(None, CTX) == expected_id("label-pool", "default")
    assert resource.resource_type_id == expected_id("node-shape", "unknown|amd64|kind (Docker)")
    eks_type = resource_type_for_shape(node_shape(eks), CTX)
    assert eks_type.resource_type_id == expected_id(
        "node-shape", "m5.2xlarge|amd64|Amazon Web Services"
    )
    sc_type = resource_type_for_storage_class(gp3, CTX)
    assert sc_type.resource_type_id == expected_id("storageclass", uid(gp3))
    manager = deployment_manager_for_cluster(namespace, [], CTX, version=None)
    assert manager.deployment_manager_id == expected_id("cluster", uid(namespace))
    assert all(
        uuid.UUID(i).version == 5
        for i in (resource.resource_id, sc_type.resource_type_id, manager.deployment_manager_id)
    )


def test_ids_depend_on_the_ocloud() -> None:
    other = MappingContext(
        ocloud_id=default_ocloud_id("another"), cluster_name="c", api_server_url="https://x"
    )
    node = load("node-eks.json")
    assert resource_for_node(node, CTX, pool_id="p").resource_id != (
        resource_for_node(node, other, pool_id="p").resource_id
    )


def test_objects_without_uid_are_rejected() -> None:
    node = load("node-kind-worker.json")
    del node["metadata"]["uid"]
    with pytest.raises(ValueError, match="uid"):
        resource_for_node(node, CTX, pool_id="p")


# --------------------------------------------------------------------------- node shapes


def test_shapes_of_the_recorded_nodes() -> None:
    shapes = {name: node_shape(load(name)) for name in NODE_FILES}
    assert shapes["node-kind-worker.json"] == NodeShape("unknown", "amd64", "kind (Docker)")
    assert shapes["node-eks.json"] == NodeShape("m5.2xlarge", "amd64", "Amazon Web Services")
    assert shapes["node-openshift.json"] == NodeShape("unknown", "amd64", "Metal3 bare metal")
    assert shapes["node-capi-metal3.json"] == NodeShape("unknown", "amd64", "Metal3 bare metal")
    assert shapes["node-eks.json"].key == "m5.2xlarge|amd64|Amazon Web Services"


def test_identical_workers_share_a_shape_and_a_resource_type() -> None:
    one, two = load("node-kind-worker.json"), load("node-kind-worker2.json")
    assert node_shape(one) == node_shape(two)
    assert node_resource(one)["resourceTypeId"] == node_resource(two)["resourceTypeId"]
    assert node_resource(one)["resourceId"] != node_resource(two)["resourceId"]


def test_shapes_differ_by_instance_type_architecture_and_vendor() -> None:
    base = load("node-eks.json")
    bigger = load("node-eks.json")
    bigger["metadata"]["labels"]["node.kubernetes.io/instance-type"] = "m5.4xlarge"
    graviton = load("node-eks.json")
    graviton["status"]["nodeInfo"]["architecture"] = "arm64"
    elsewhere = load("node-eks.json")
    elsewhere["spec"]["providerID"] = "openstack:///4f2a9c1e-8b7d-4e3f-a6c5-0d9e8f7a6b5c"
    shapes = [node_shape(n) for n in (base, bigger, graviton, elsewhere)]
    type_ids = {resource_type_for_shape(s, CTX).resource_type_id for s in shapes}
    assert len(set(shapes)) == len(type_ids) == 4


@pytest.mark.parametrize(
    ("provider_id", "vendor", "provider", "kind"),
    [
        ("aws:///us-east-1a/i-0abc1234def567890", "Amazon Web Services", "aws", "LOGICAL"),
        ("gce://my-project/europe-west1-b/gke-pool-1-abcd", "Google Cloud", "gce", "LOGICAL"),
        (
            "azure:///subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/"
            "virtualMachines/vm-0",
            "Microsoft Azure",
            "azure",
            "LOGICAL",
        ),
        ("openstack:///4f2a9c1e-8b7d-4e3f-a6c5-0d9e8f7a6b5c", "OpenStack", "openstack", "LOGICAL"),
        ("vsphere://4203d9a6-1b2c-3d4e-5f60-718293a4b5c6", "VMware vSphere", "vsphere", "LOGICAL"),
        (
            "baremetalhost:///openshift-machine-api/w-0/1f3b",
            "Metal3 bare metal",
            "metal3",
            "PHYSICAL",
        ),
        ("metal3://metal3/du-server-03/m3m-6kq2t", "Metal3 bare metal", "metal3", "PHYSICAL"),
        ("kind://docker/kind/kind-worker", "kind (Docker)", "kind", "LOGICAL"),
        ("AWS:///us-east-1a/i-0abc", "Amazon Web Services", "aws", "LOGICAL"),
        ("hcloud://12345", "unknown", "unknown", "UNDEFINED"),
        ("not-a-provider-id", "unknown", "unknown", "UNDEFINED"),
        (None, "unknown", "unknown", "UNDEFINED"),
    ],
)
def test_vendor_and_resource_kind_from_the_provider_id(
    provider_id: str | None, vendor: str, provider: str, kind: str
) -> None:
    node = load("node-kind-worker.json")
    node["spec"].pop("providerID")
    if provider_id is not None:
        node["spec"]["providerID"] = provider_id
    shape = node_shape(node)
    resource_type = resource_type_for_shape(shape, CTX)
    assert (shape.vendor, shape.provider, resource_type.resource_kind) == (vendor, provider, kind)
    assert resource_type.resource_class == "COMPUTE"
    assert resource_type.extensions["provider"] == provider


def test_vendor_falls_back_to_managed_node_pool_labels() -> None:
    node = load("node-eks.json")
    del node["spec"]["providerID"]
    assert node_shape(node).vendor == "Amazon Web Services"
    node["metadata"]["labels"] = {"kubernetes.io/arch": "amd64"}
    assert node_shape(node).vendor == "unknown"


def test_aws_bare_metal_instances_are_physical() -> None:
    node = load("node-eks.json")
    node["metadata"]["labels"]["node.kubernetes.io/instance-type"] = "m7i.metal-24xl"
    assert resource_type_for_shape(node_shape(node), CTX).resource_kind == "PHYSICAL"


def test_shape_fallbacks_for_instance_type_and_architecture() -> None:
    node = load("node-eks.json")
    del node["metadata"]["labels"]["node.kubernetes.io/instance-type"]
    del node["status"]["nodeInfo"]["architecture"]
    node["metadata"]["labels"]["kubernetes.io/arch"] = "arm64"
    node["metadata"]["labels"]["beta.kubernetes.io/instance-type"] = "m6g.large"
    assert node_shape(node) == NodeShape("m6g.large", "arm64", "Amazon Web Services")
    node["metadata"] = {"name": "bare", "uid": "u"}
    node["status"] = {}
    assert node_shape(node) == NodeShape("unknown", "unknown", "Amazon Web Services")


def test_resource_type_for_shape() -> None:
    eks = resource_type_for_shape(node_shape(load("node-eks.json")), CTX)
    assert (eks.name, eks.vendor, eks.model, eks.version) == (
        "m5.2xlarge",
        "Amazon Web Services",
        "m5.2xlarge",
        "amd64",
    )
    assert eks.extensions == {
        "architecture": "amd64",
        "instanceType": "m5.2xlarge",
        "provider": "aws",
        "shapeKey": "m5.2xlarge|amd64|Amazon Web Services",
    }
    metal = resource_type_for_shape(node_shape(load("node-capi-metal3.json")), CTX)
    assert metal.name == "amd64 Metal3 bare metal node"
    assert metal.model == "unknown"
    assert_round_trips(eks)
    assert_round_trips(metal)


# --------------------------------------------------------------------------- storage classes


def test_storage_class_is_default() -> None:
    standard, gp3 = load("storageclass-standard.json"), load("storageclass-gp3.json")
    assert storage_class_is_default(standard)
    assert not storage_class_is_default(gp3)
    gp3["metadata"]["annotations"] = {"storageclass.beta.kubernetes.io/is-default-class": "true"}
    assert storage_class_is_default(gp3)
    standard["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] = "false"
    assert not storage_class_is_default(standard)


def test_resource_type_for_storage_classes() -> None:
    standard = resource_type_for_storage_class(load("storageclass-standard.json"), CTX)
    gp3 = resource_type_for_storage_class(load("storageclass-gp3.json"), CTX)
    assert (standard.name, standard.model, standard.resource_kind, standard.resource_class) == (
        "standard",
        "rancher.io/local-path",
        "LOGICAL",
        "STORAGE",
    )
    assert standard.extensions == {
        "storageClassName": "standard",
        "provisioner": "rancher.io/local-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": False,
        "isDefault": True,
        "parameters": {},
    }
    assert gp3.vendor == "Amazon Web Services"
    assert gp3.extensions["allowVolumeExpansion"] is True
    assert gp3.extensions["isDefault"] is False
    assert gp3.extensions["parameters"]["type"] == "gp3"
    assert gp3.version.startswith("sha256:")
    assert gp3.version != standard.version
    assert_round_trips(standard)
    assert_round_trips(gp3)


def test_storage_class_version_depends_on_what_it_provisions_only() -> None:
    one = load("storageclass-gp3.json")
    two = load("storageclass-gp3.json")
    two["metadata"]["name"] = "gp3-copy"
    two["metadata"]["uid"] = "2e8d0f4c-6b3e-4d9f-a7c1-0e2b4d6f8a31"
    three = load("storageclass-gp3.json")
    three["parameters"]["iops"] = "6000"
    one_t, two_t, three_t = (resource_type_for_storage_class(sc, CTX) for sc in (one, two, three))
    assert one_t.version == two_t.version != three_t.version
    assert one_t.resource_type_id != two_t.resource_type_id


@pytest.mark.parametrize(
    ("provisioner", "vendor"),
    [
        ("openshift-storage.rbd.csi.ceph.com", "Ceph"),
        ("kubernetes.io/no-provisioner", "Kubernetes (local persistent volumes)"),
        ("pd.csi.storage.gke.io", "Google Cloud"),
        ("csi.example.org", "csi.example.org"),
    ],
)
def test_storage_vendor_from_the_provisioner(provisioner: str, vendor: str) -> None:
    sc = load("storageclass-standard.json")
    sc["provisioner"] = provisioner
    assert resource_type_for_storage_class(sc, CTX).vendor == vendor


def test_storage_class_defaults_the_api_server_would_apply() -> None:
    sc = load("storageclass-gp3.json")
    for field in ("reclaimPolicy", "volumeBindingMode", "allowVolumeExpansion", "parameters"):
        del sc[field]
    sc["mountOptions"] = ["debug"]
    extensions = resource_type_for_storage_class(sc, CTX).extensions
    assert extensions["reclaimPolicy"] == "Delete"
    assert extensions["volumeBindingMode"] == "Immediate"
    assert extensions["allowVolumeExpansion"] is False
    assert extensions["parameters"] == {}
    assert extensions["mountOptions"] == ["debug"]


# --------------------------------------------------------------------------- pools


def test_node_owned_by_a_known_machineset_is_in_its_pool() -> None:
    node, known = load("node-capi-metal3.json"), machinesets()
    machineset = next(iter(known.values()))
    assert pool_id_for_node(node, CTX, known) == machineset_pool_id(machineset, CTX)
    assert machineset_key(machineset) == ("metal3", "edge-du-md-0-7d9f8c6b5d")


def test_node_owned_by_an_unknown_machineset_falls_back_to_its_label() -> None:
    node = load("node-capi-metal3.json")
    label_pool = label_pool_id("far-edge-du", CTX)
    assert pool_id_for_node(node, CTX) == label_pool
    assert pool_id_for_node(node, CTX, {}) == label_pool
    assert pool_id_for_node(node, CTX, {("default", "edge-du-md-0-7d9f8c6b5d"): {}}) == label_pool
    node["metadata"]["annotations"]["cluster.x-k8s.io/owner-kind"] = "KubeadmControlPlane"
    assert pool_id_for_node(node, CTX, machinesets()) == label_pool


def test_cluster_namespace_annotation_defaults_to_default() -> None:
    node = load("node-capi-metal3.json")
    del node["metadata"]["annotations"]["cluster.x-k8s.io/cluster-namespace"]
    machineset = load("machineset-edge-du.json")
    del machineset["metadata"]["namespace"]
    known = {machineset_key(machineset): machineset}
    assert pool_id_for_node(node, CTX, known) == machineset_pool_id(machineset, CTX)


def test_labelled_node_is_in_its_label_pool() -> None:
    node = load("node-eks.json")
    assert pool_label_value(node, CTX) == "core-upf"
    assert pool_id_for_node(node, CTX, machinesets()) == label_pool_id("core-upf", CTX)


def test_unlabelled_node_is_in_the_default_pool() -> None:
    node = load("node-kind-worker.json")
    default = label_pool_id(None, CTX)
    assert pool_label_value(node, CTX) is None
    assert pool_id_for_node(node, CTX, machinesets()) == default
    for value in ("", "default"):  # empty, or labelled with the default pool's name
        node["metadata"]["labels"]["o2ims.oran.org/resource-pool"] = value
        assert pool_label_value(node, CTX) is None
        assert pool_id_for_node(node, CTX) == default


def test_pool_label_and_default_name_are_configurable() -> None:
    ctx = MappingContext(
        ocloud_id=OCLOUD,
        cluster_name="c",
        api_server_url="https://x",
        pool_label="example.com/pool",
        default_pool_name="general",
    )
    node = load("node-eks.json")
    assert pool_id_for_node(node, ctx) == label_pool_id(None, ctx)
    assert label_pool_id(None, ctx) == expected_id("label-pool", "general")
    node["metadata"]["labels"]["example.com/pool"] = "upf"
    assert pool_id_for_node(node, ctx) == expected_id("label-pool", "upf")
    pool = resource_pool_for_label(None, [], ctx)
    assert pool.name == "general"
    assert "example.com/pool" in pool.description


def test_resource_pool_for_machineset() -> None:
    machineset = load("machineset-edge-du.json")
    pool = resource_pool_for_machineset(machineset, CTX)
    assert pool.resource_pool_id == machineset_pool_id(machineset, CTX)
    assert pool.name == "edge-du-md-0-7d9f8c6b5d"
    assert pool.description == "Far-edge DU servers (Dell R750, A100) at site A"
    assert (pool.o_cloud_id, pool.global_location_id) == (OCLOUD, "ES-MAD-DC1")
    assert pool.location == "site-a-rack-3"  # the failure domain beats the configured location
    assert pool.extensions == {
        "source": "MachineSet",
        "namespace": "metal3",
        "clusterName": "edge-site-1",
        "replicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "labels": {
            "cluster.x-k8s.io/cluster-name": "edge-site-1",
            "cluster.x-k8s.io/deployment-name": "edge-du-md-0",
            "machine-template-hash": "3859471618",
        },
        "infrastructureRef": {"kind": "Metal3MachineTemplate", "name": "edge-du-md-0-workers"},
        "failureDomain": "site-a-rack-3",
        "kubernetesVersion": "v1.29.4",
        "machineDeployment": "edge-du-md-0",
    }
    assert_round_trips(pool)


def test_machineset_pool_without_description_or_failure_domain() -> None:
    machineset = load("machineset-edge-du.json")
    del machineset["metadata"]["annotations"]["o2ims.oran.org/description"]
    del machineset["spec"]["template"]["spec"]["failureDomain"]
    del machineset["status"]
    pool = resource_pool_for_machineset(machineset, CTX)
    assert pool.description == (
        "Cluster API MachineSet metal3/edge-du-md-0-7d9f8c6b5d of cluster edge-site-1"
    )
    assert pool.location == "Madrid DC1"
    assert pool.extensions["readyReplicas"] == pool.extensions["availableReplicas"] == 0
    assert "failureDomain" not in pool.extensions
    labels = machineset["spec"]["template"]["metadata"]["labels"]
    labels["topology.kubernetes.io/zone"] = "site-a"
    assert resource_pool_for_machineset(machineset, CTX).location == "site-a"


def test_resource_pool_for_label() -> None:
    eks = load("node-eks.json")
    other = load("node-eks.json")
    other["metadata"]["labels"]["topology.kubernetes.io/zone"] = "us-east-1b"
    pool = resource_pool_for_label("core-upf", [eks, other, eks], CTX)
    assert pool.resource_pool_id == label_pool_id("core-upf", CTX)
    assert pool.name == "core-upf"
    assert (pool.global_location_id, pool.location) == ("ES-MAD-DC1", "Madrid DC1")
    assert pool.extensions == {
        "source": "nodeLabel",
        "poolLabel": "o2ims.oran.org/resource-pool",
        "nodeSelector": {"o2ims.oran.org/resource-pool": "core-upf"},
        "zones": ["us-east-1a", "us-east-1b"],
        "regions": ["us-east-1"],
        "nodeCount": 3,
    }
    assert_round_trips(pool)


def test_default_pool() -> None:
    nodes = [load(name) for name in NODE_FILES[:3]]
    pool = resource_pool_for_label(None, nodes, CTX)
    assert pool.resource_pool_id == label_pool_id(None, CTX)
    assert pool.name == "default"
    assert "nodeSelector" not in pool.extensions
    assert pool.description == (
        "Nodes of cluster ran-core-prod without the o2ims.oran.org/resource-pool label"
    )
    assert "no o2ims.oran.org/resource-pool label" in pool.extensions["note"]
    assert (pool.extensions["nodeCount"], pool.extensions["zones"]) == (3, [])
    assert resource_pool_for_label("default", nodes, CTX) == pool
    assert_round_trips(pool)


def test_pool_without_configured_location_omits_it() -> None:
    ctx = MappingContext(ocloud_id=OCLOUD, cluster_name="c", api_server_url="https://x")
    wire = resource_pool_for_label(None, [], ctx).to_wire()
    assert "location" not in wire
    assert wire["globalLocationId"] == "unknown"


# --------------------------------------------------------------------------- nodes


def test_resource_for_the_eks_node() -> None:
    node = load("node-eks.json")
    pool = label_pool_id("core-upf", CTX)
    resource = resource_for_node(node, CTX, pool_id=pool)
    assert resource.resource_pool_id == pool
    assert resource.global_asset_id == "aws:///us-east-1a/i-0abc1234def567890"
    assert resource.description == "ip-192-168-12-34.ec2.internal: Amazon Linux 2, m5.2xlarge"
    assert resource.tags == []
    assert resource.groups == ["core-upf", "us-east-1a"]
    assert resource.elements == []
    ext = resource.extensions
    assert ext["name"] == "ip-192-168-12-34.ec2.internal"
    assert ext["uid"] == uid(node)
    assert ext["creationTimestamp"] == "2024-06-03T14:27:09Z"
    assert ext["labels"]["node.kubernetes.io/instance-type"] == "m5.2xlarge"
    assert ext["annotations"] == {}  # none of the EKS annotations is allow-listed
    assert ext["capacity"]["memory"] == "32386520Ki"
    assert ext["allocatable"]["cpu"] == "7910m"
    assert ext["conditions"]["Ready"] == {
        "status": "True",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
    }
    assert set(ext["conditions"]) == {"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}
    assert (ext["ready"], ext["status"], ext["unschedulable"]) == ("True", "Ready", False)
    assert ext["taints"] == []
    assert ext["addresses"][0] == {"type": "InternalIP", "address": "192.168.12.34"}
    assert len(ext["addresses"]) == 5
    assert ext["nodeInfo"] == {
        "architecture": "amd64",
        "containerRuntimeVersion": "containerd://1.7.11",
        "kernelVersion": "5.10.224-212.876.amzn2.x86_64",
        "kubeletVersion": "v1.29.6-eks-1552ad0",
        "operatingSystem": "linux",
        "osImage": "Amazon Linux 2",
        "systemUUID": "ec2d3f1a-8b7c-6e5d-4f3a-2b1c0d9e8f7a",
    }
    assert ext["providerID"] == "aws:///us-east-1a/i-0abc1234def567890"
    assert (ext["zone"], ext["region"]) == ("us-east-1a", "us-east-1")
    assert (ext["hostname"], ext["internalIP"]) == (
        "ip-192-168-12-34.ec2.internal",
        "192.168.12.34",
    )


def test_resource_for_the_kind_control_plane() -> None:
    resource = resource_for_node(load("node-kind-control-plane.json"), CTX, pool_id="p")
    assert resource.tags == ["control-plane"]
    assert resource.groups == []
    assert resource.description == (
        "kind-control-plane: Debian GNU/Linux 12 (bookworm), amd64 kind (Docker) node"
    )
    assert resource.extensions["taints"] == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    ]
    assert resource.extensions["podCIDRs"] == ["10.244.0.0/24"]
    assert "zone" not in resource.extensions
    assert "region" not in resource.extensions


def test_resource_for_the_openshift_node_keeps_only_allow_listed_annotations() -> None:
    node = load("node-openshift.json")
    resource = resource_for_node(node, CTX, pool_id=pool_id_for_node(node, CTX))
    assert resource.resource_pool_id == label_pool_id("ran-du", CTX)
    assert resource.tags == ["worker", "worker-cnf"]
    assert resource.extensions["annotations"] == {
        "machine.openshift.io/machine": "openshift-machine-api/ocp-ran-7x2kq-worker-0-h8m4z"
    }
    assert "Red Hat Enterprise Linux CoreOS" in resource.description
    assert resource.extensions["capacity"]["openshift.io/du_fh"] == "8"


def test_resource_for_the_capi_node() -> None:
    node = load("node-capi-metal3.json")
    wire = node_resource(node)
    assert wire["resourcePoolId"] == machineset_pool_id(load("machineset-edge-du.json"), CTX)
    assert wire["tags"] == ["du"]
    ext = wire["extensions"]
    assert set(ext["annotations"]) == {
        "cluster.x-k8s.io/cluster-name",
        "cluster.x-k8s.io/cluster-namespace",
        "cluster.x-k8s.io/machine",
        "cluster.x-k8s.io/owner-kind",
        "cluster.x-k8s.io/owner-name",
    }
    assert set(ext["annotations"]) <= NODE_ANNOTATIONS
    assert ext["taints"] == [{"key": "dedicated", "value": "ran-du", "effect": "NoSchedule"}]
    assert ext["conditions"]["NetworkUnavailable"]["reason"] == "CalicoIsUp"


def test_global_asset_id_falls_back_to_system_uuid_then_uid() -> None:
    node = load("node-openshift.json")
    del node["spec"]["providerID"]
    assert resource_for_node(node, CTX, pool_id="p").global_asset_id == (
        "4c4c4544-0052-3510-8048-b4c04f4d3433"
    )
    del node["status"]["nodeInfo"]["systemUUID"]
    assert resource_for_node(node, CTX, pool_id="p").global_asset_id == uid(node)


def test_node_without_status_maps_with_unknown_readiness() -> None:
    node = load("node-kind-worker.json")
    del node["status"]
    ext = resource_for_node(node, CTX, pool_id="p").extensions
    assert (ext["ready"], ext["status"], ext["conditions"]) == ("Unknown", "NotReady", {})
    assert ext["nodeInfo"]["osImage"] == ""


def test_no_volatile_field_reaches_the_resource() -> None:
    for name in NODE_FILES:
        text = json.dumps(node_resource(load(name)))
        for volatile in (
            "resourceVersion",
            "managedFields",
            "lastHeartbeatTime",
            "lastTransitionTime",
            "timeAdded",
            "bootID",
            "machineID",
            "images",
            "daemonEndpoints",
            "kubeProxyVersion",
        ):
            assert volatile not in text, (name, volatile)


# --------------------------------------------------------------------------- stability

Mutation = Callable[[Json], None]


def _heartbeat(node: Json) -> None:
    node["metadata"]["resourceVersion"] = str(int(node["metadata"]["resourceVersion"]) + 977)
    node["metadata"]["managedFields"][-1]["time"] = "2024-09-16T10:52:30Z"
    node["metadata"]["managedFields"].reverse()
    for item in node["status"]["conditions"]:
        item["lastHeartbeatTime"] = "2024-09-16T10:52:30Z"
    node["status"]["images"] = node["status"]["images"][:1]
    node["status"]["nodeInfo"]["bootID"] = "00000000-1111-4222-8333-444444444444"
    node["status"].setdefault("volumesInUse", []).append("kubernetes.io/csi/ebs.csi.aws.com^vol")
    for taint in node["spec"].get("taints", []):
        taint["timeAdded"] = "2024-09-16T10:52:30Z"


def _reordered_maps(node: Json) -> None:
    """The same object with its maps in a different order (e.g. a watch event vs a list)."""
    metadata = node["metadata"]
    metadata["labels"] = dict(reversed(metadata["labels"].items()))
    metadata["annotations"] = dict(reversed(metadata["annotations"].items()))
    node["status"]["capacity"] = dict(reversed(node["status"]["capacity"].items()))
    node["status"]["conditions"].reverse()


def _noisy_annotation(node: Json) -> None:
    node["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"] = "15"
    node["metadata"]["annotations"]["k8s.ovn.org/node-subnets"] = '{"default":["10.1.0.0/23"]}'


@pytest.mark.parametrize("mutate", [_heartbeat, _reordered_maps, _noisy_annotation])
@pytest.mark.parametrize("name", NODE_FILES)
def test_heartbeat_only_updates_do_not_change_the_resource(name: str, mutate: Mutation) -> None:
    before, after = load(name), load(name)
    mutate(after)
    assert after != before
    assert node_resource(after) == node_resource(before)
    assert json.dumps(node_resource(after)) == json.dumps(node_resource(before))


def test_elapsed_times_in_condition_messages_do_not_change_the_resource() -> None:
    before, after = load("node-openshift.json"), load("node-openshift.json")
    template = "PLEG is not healthy: pleg was last seen active {} ago; threshold is 3m0s"
    for node, elapsed in ((before, "3m5.012345678s"), (after, "3m15.102938476s")):
        ready = condition(node, "Ready")
        ready.update(status="False", reason="KubeletNotReady", message=template.format(elapsed))
    assert node_resource(after) == node_resource(before)
    message = node_resource(after)["extensions"]["conditions"]["Ready"]["message"]
    assert message == (
        "PLEG is not healthy: pleg was last seen active some time ago; threshold is 3m0s"
    )


def _not_ready(node: Json) -> None:
    ready = condition(node, "Ready")
    ready.update(
        status="False",
        reason="KubeletNotReady",
        message="container runtime network not ready: NetworkReady=false",
        lastTransitionTime="2024-09-16T10:52:30Z",
    )


def _unknown(node: Json) -> None:
    condition(node, "Ready").update(
        status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status."
    )


def _label(node: Json) -> None:
    node["metadata"]["labels"]["feature.node.kubernetes.io/cpu-cpuid.AVX512F"] = "true"


def _memory_pressure(node: Json) -> None:
    condition(node, "MemoryPressure").update(status="True", reason="KubeletHasInsufficientMemory")


def _cordon(node: Json) -> None:
    node["spec"]["unschedulable"] = True
    node["spec"].setdefault("taints", []).append(
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "x"}
    )


def _kubelet_upgrade(node: Json) -> None:
    node["status"]["nodeInfo"]["kubeletVersion"] = "v1.32.0"


def _allowed_annotation(node: Json) -> None:
    node["metadata"]["annotations"]["o2ims.oran.org/description"] = "spare"


@pytest.mark.parametrize(
    "mutate",
    [
        _not_ready,
        _unknown,
        _label,
        _memory_pressure,
        _cordon,
        _kubelet_upgrade,
        _allowed_annotation,
    ],
)
@pytest.mark.parametrize("name", NODE_FILES)
def test_real_changes_change_the_resource(name: str, mutate: Mutation) -> None:
    before, after = load(name), load(name)
    mutate(after)
    assert node_resource(after) != node_resource(before)


def test_not_ready_is_reported() -> None:
    node = load("node-eks.json")
    _not_ready(node)
    ext = node_resource(node)["extensions"]
    assert (ext["ready"], ext["status"]) == ("False", "NotReady")
    assert ext["conditions"]["Ready"]["reason"] == "KubeletNotReady"
    _unknown(node)
    assert node_resource(node)["extensions"]["ready"] == "Unknown"


def test_pool_and_storage_class_ignore_bookkeeping_fields() -> None:
    machineset, changed = load("machineset-edge-du.json"), load("machineset-edge-du.json")
    changed["metadata"]["resourceVersion"] = "9999999"
    changed["metadata"]["managedFields"].pop()
    for item in changed["status"]["conditions"]:
        item["lastTransitionTime"] = "2024-09-16T11:00:00Z"
    changed["status"]["observedGeneration"] = 2
    assert resource_pool_for_machineset(changed, CTX) == resource_pool_for_machineset(
        machineset, CTX
    )
    changed["status"]["readyReplicas"] = 1
    assert resource_pool_for_machineset(changed, CTX) != resource_pool_for_machineset(
        machineset, CTX
    )
    sc, sc_changed = load("storageclass-gp3.json"), load("storageclass-gp3.json")
    sc_changed["metadata"]["resourceVersion"] = "7000"
    sc_changed["metadata"]["managedFields"] = []
    assert resource_type_for_storage_class(sc_changed, CTX) == (
        resource_type_for_storage_class(sc, CTX)
    )


# --------------------------------------------------------------------------- cluster


def test_cluster_capacity_sums_installed_capacity() -> None:
    nodes = [load(name) for name in NODE_FILES]  # 3 kind, EKS, OpenShift, CAPI

    def gib(resource: str) -> str:
        total = sum(parse_quantity(n["status"]["capacity"][resource]) for n in nodes)
        return str(round(total / 2**30))

    assert cluster_capacity(nodes) == {
        "nodes": "6",
        "cpu": str(8 * 3 + 8 + 64 + 128),
        "memoryGiB": gib("memory"),
        "pods": str(110 * 3 + 58 + 250 + 110),
        "ephemeralStorageGiB": gib("ephemeral-storage"),
        "gpu": "2",
    }
    assert gib("memory") == "879"


def test_cluster_capacity_edge_cases() -> None:
    assert cluster_capacity([]) == {
        "nodes": "0",
        "cpu": "0",
        "memoryGiB": "0",
        "pods": "0",
        "ephemeralStorageGiB": "0",
    }
    one = load("node-kind-worker.json")
    one["status"]["capacity"] = {"cpu": "3800m", "memory": "1536Mi", "pods": "110"}
    two = load("node-kind-worker2.json")
    two["status"]["capacity"] = {"cpu": "200m", "memory": "1G", "ephemeral-storage": "1.5Ti"}
    capacity = cluster_capacity([one, two])
    assert capacity["cpu"] == "4"
    assert capacity["memoryGiB"] == "2"  # 1.5 GiB + 0.93 GiB = 2.43 GiB
    assert capacity["ephemeralStorageGiB"] == "1536"
    assert "gpu" not in capacity
    one["status"]["capacity"]["cpu"] = "2500m"
    assert cluster_capacity([one])["cpu"] == "2.5"
    one["status"]["capacity"]["memory"] = "lots"
    with pytest.raises(ValueError, match="quantity"):
        cluster_capacity([one])


def test_deployment_manager_for_cluster() -> None:
    namespace = load("namespace-kube-system.json")
    nodes = [load(name) for name in NODE_FILES]
    manager = deployment_manager_for_cluster(namespace, nodes, CTX, version="v1.31.0")
    assert manager.name == "ran-core-prod"
    assert manager.service_uri == "https://api.ran-core-prod.example.com:6443"
    assert manager.o_cloud_id == OCLOUD
    assert manager.supported_locations == ["ES-MAD-DC1"]
    assert manager.capabilities == {"profile": "kubernetes", "kubernetesVersion": "v1.31.0"}
    assert manager.capacity == cluster_capacity(nodes)
    assert manager.extensions["kubeSystemUid"] == uid(namespace)
    assert_round_trips(manager)
    unknown = deployment_manager_for_cluster(namespace, [], CTX, version=None)
    assert unknown.capabilities["kubernetesVersion"] == "unknown"
    assert unknown.deployment_manager_id == manager.deployment_manager_id


def test_deployment_manager_ignores_node_heartbeats() -> None:
    namespace = load("namespace-kube-system.json")
    before = [load(name) for name in NODE_FILES]
    after = [load(name) for name in NODE_FILES]
    for node in after:
        _heartbeat(node)
    assert deployment_manager_for_cluster(namespace, before, CTX, version="v1.31.0") == (
        deployment_manager_for_cluster(namespace, after, CTX, version="v1.31.0")
    )


# --------------------------------------------------------------------------- all models


def test_every_model_round_trips_and_inputs_are_not_mutated() -> None:
    objects = {path.name: load(path.name) for path in FIXTURES.glob("*.json")}
    pristine = copy.deepcopy(objects)
    nodes = [objects[name] for name in NODE_FILES]
    machineset = objects["machineset-edge-du.json"]
    known = {machineset_key(machineset): machineset}
    models: list[InventoryModel] = [
        resource_for_node(node, CTX, pool_id=pool_id_for_node(node, CTX, known)) for node in nodes
    ]
    models += [resource_type_for_shape(shape, CTX) for shape in {node_shape(n) for n in nodes}]
    models += [resource_type_for_storage_class(objects[f], CTX) for f in STORAGE_CLASS_FILES]
    models.append(resource_pool_for_machineset(machineset, CTX))
    by_label: dict[str | None, list[Json]] = {}
    for node in nodes:
        by_label.setdefault(pool_label_value(node, CTX), []).append(node)
    models += [resource_pool_for_label(value, members, CTX) for value, members in by_label.items()]
    models.append(
        deployment_manager_for_cluster(
            objects["namespace-kube-system.json"], nodes, CTX, version="v1.31.0"
        )
    )
    for model in models:
        assert_round_trips(model)
    assert len({model.object_id for model in models}) == len(models)
    assert objects == pristine


def test_mapping_is_deterministic() -> None:
    def everything() -> str:
        nodes = [load(name) for name in NODE_FILES]
        wires = [node_resource(node) for node in nodes]
        wires += [resource_type_for_shape(node_shape(n), CTX).to_wire() for n in nodes]
        wires += [resource_pool_for_label(None, nodes, CTX).to_wire()]
        return json.dumps(wires)

    assert everything() == everything()
