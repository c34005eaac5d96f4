"""The pure halves of the Kubernetes backend's writes: the objects and patches it sends,
the pods a drain evicts, which object stands behind a pool id, and the pools the mapping
makes of ``ResourcePool`` objects.  The requests themselves run against a real API server
in ``tests/integration/test_kubernetes_lifecycle.py``."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.drain import evictable, selector_matches
from netweave.adapters.kubernetes.machinesets import machineset_body
from netweave.adapters.kubernetes.pools import Catalog, check_user_labels, locate_pool
from netweave.adapters.kubernetes.resourcepools import (
    is_free,
    join_patch,
    leave_patch,
    resource_pool_body,
)
from netweave.adapters.kubernetes.rest import Reply
from netweave.adapters.lifecycle import PoolRequest, Taint
from netweave.errors import InvalidRequestError
from netweave.models.ids import default_ocloud_id

OCLOUD = default_ocloud_id("k8s-writes-tests")
CTX = m.MappingContext(
    ocloud_id=OCLOUD, cluster_name="ran", api_server_url="https://k8s", location="Madrid"
)
POOL = m.DEFAULT_POOL_LABEL
Json = dict[str, Any]


def expected_id(kind: str, key: str) -> str:
    return str(uuid.uuid5(uuid.UUID(OCLOUD), f"{kind}:{key}"))


def obj(
    name: str, *, labels: Json | None = None, annotations: Json | None = None, **more: Any
) -> Json:
    metadata = {
        "name": name,
        "uid": f"uid-{name}",
        "labels": labels or {},
        "annotations": annotations or {},
    }
    return {"metadata": {**metadata, **more.pop("metadata", {})}, **more}


TEMPLATE: Json = obj(
    "md-0-42",
    labels={"cluster.x-k8s.io/deployment-name": "md-0", "machine-template-hash": "42"},
    metadata={
        "namespace": "capi",
        "ownerReferences": [{"kind": "MachineDeployment", "name": "md-0", "uid": "u"}],
    },
    spec={
        "clusterName": "edge",
        "replicas": 3,
        "deletePolicy": "Newest",
        "minReadySeconds": 10,
        "selector": {"matchLabels": {"machine-template-hash": "42"}},
        "template": {
            "metadata": {"labels": {"machine-template-hash": "42"}},
            "spec": {
                "clusterName": "edge",
                "version": "v1.29.2",
                "bootstrap": {"configRef": {"kind": "KubeadmConfigTemplate", "name": "md-0"}},
                "infrastructureRef": {"kind": "Metal3MachineTemplate", "name": "md-0"},
                "providerID": "metal3://stale",
            },
        },
    },
)


# MachineSets -----------------------------------------------------------------------------


def test_a_machineset_pool_clones_the_machine_template_and_nothing_that_adopts_it() -> None:
    request = PoolRequest(
        name="du",
        description="DU servers",
        location="Madrid",
        global_location_id="ES-MAD",
        instance_type="r750",
        replicas=2,
        labels={"tier": "du"},
        taints=(Taint("dedicated", "NoSchedule", "du"), Taint("gpu", "NoExecute")),
        tenant="acme",
    )
    body = machineset_body(TEMPLATE, request, CTX)
    selector = {m.MACHINESET_POOL_LABEL: "du", "cluster.x-k8s.io/cluster-name": "edge"}
    assert body["metadata"] == {
        "name": "du",
        "namespace": "capi",
        "labels": {**selector, "tier": "du", m.DEFAULT_TENANT_LABEL: "acme"},
        "annotations": {
            m.MANAGED_BY_ANNOTATION: "netweave",
            m.LABELS_ANNOTATION: '["tier"]',
            m.DESCRIPTION_ANNOTATION: "DU servers",
            m.LOCATION_ANNOTATION: "Madrid",
            m.GLOBAL_LOCATION_ANNOTATION: "ES-MAD",
            m.INSTANCE_TYPE_ANNOTATION: "r750",
            m.TAINTS_ANNOTATION: json.dumps(
                [
                    {"key": "dedicated", "effect": "NoSchedule", "value": "du"},
                    {"key": "gpu", "effect": "NoExecute"},
                ]
            ),
        },
    }
    machine_spec = dict(TEMPLATE["spec"]["template"]["spec"])
    del machine_spec["providerID"]
    assert body["spec"] == {
        "clusterName": "edge",
        "deletePolicy": "Newest",
        "minReadySeconds": 10,
        "replicas": 2,
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": {**selector, "tier": "du"}}, "spec": machine_spec},
    }


def test_a_machineset_pool_defaults_to_the_template_replicas_and_skips_empty_fields() -> None:
    body = machineset_body(TEMPLATE, PoolRequest(name="plain"), CTX)
    assert body["spec"]["replicas"] == 3
    assert body["metadata"]["annotations"] == {
        m.MANAGED_BY_ANNOTATION: "netweave",
        m.LABELS_ANNOTATION: "[]",
    }
    assert m.DEFAULT_TENANT_LABEL not in body["metadata"]["labels"]
    bare = copy.deepcopy(TEMPLATE)
    del bare["spec"]["replicas"], bare["spec"]["clusterName"]
    del bare["spec"]["template"]["spec"]["clusterName"]
    body = machineset_body(bare, PoolRequest(name="plain"), CTX)
    assert "replicas" not in body["spec"]  # cluster-api's default (1)
    assert body["spec"]["selector"] == {"matchLabels": {m.MACHINESET_POOL_LABEL: "plain"}}


def test_the_machineset_pool_shows_what_netweave_recorded() -> None:
    body = machineset_body(
        TEMPLATE,
        PoolRequest(
            name="du", location="Madrid North", global_location_id="ES-MAD", instance_type="r750"
        ),
        CTX,
    )
    ms = {**body, "metadata": {**body["metadata"], "uid": "uid-du"}}
    pool = m.resource_pool_for_machineset(ms, CTX)
    assert pool.resource_pool_id == expected_id("machineset", "uid-du")
    assert (pool.location, pool.global_location_id) == ("Madrid North", "ES-MAD")
    assert pool.extensions["managedBy"] == "netweave"
    assert pool.extensions["instanceType"] == "r750"
    assert "taints" not in pool.extensions
    # An unmanaged MachineSet keeps its failure domain as location, and no managed fields.
    unmanaged = m.resource_pool_for_machineset(TEMPLATE, CTX)
    assert "managedBy" not in unmanaged.extensions and not m.is_managed(TEMPLATE)
    assert m.is_managed(body)


# ResourcePool objects and node membership --------------------------------------------------


def test_a_resource_pool_object_records_the_request() -> None:
    request = PoolRequest(
        name="ran",
        instance_type="m5.xlarge",
        replicas=0,
        labels={"tier": "du"},
        taints=(Taint("dedicated", "NoSchedule"),),
        tenant="acme",
    )
    body = resource_pool_body(request, CTX)
    assert body["metadata"] == {
        "name": "ran",
        "labels": {m.DEFAULT_TENANT_LABEL: "acme"},
        "annotations": {m.MANAGED_BY_ANNOTATION: "netweave"},
    }
    assert body["spec"] == {
        "description": "",
        "nodeSelector": {"node.kubernetes.io/instance-type": "m5.xlarge"},
        "labels": {"tier": "du"},
        "taints": [{"key": "dedicated", "effect": "NoSchedule"}],
        "instanceType": "m5.xlarge",
        "replicas": 0,  # zero is a count, not "unset"
    }
    assert resource_pool_body(PoolRequest(name="any"), CTX)["spec"]["nodeSelector"] == {}


def test_which_nodes_a_pool_may_claim() -> None:
    shape = {"node.kubernetes.io/instance-type": "m5"}
    assert is_free(obj("w", labels=shape), shape, CTX)
    assert is_free(obj("w", labels={**shape, POOL: "default"}), shape, CTX)  # the default pool
    assert is_free(obj("w", labels={**shape, POOL: ""}), shape, CTX)
    assert not is_free(obj("w", labels={**shape, POOL: "edge"}), shape, CTX)
    assert not is_free(obj("w", labels={"node.kubernetes.io/instance-type": "m6"}), shape, CTX)
    assert is_free(obj("w"), {}, CTX)
    for role in ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"):
        assert not is_free(obj("cp", labels={role: ""}), {}, CTX)
    assert not is_free(obj("w", metadata={"deletionTimestamp": "2024-05-01T10:00:00Z"}), {}, CTX)


def test_joining_a_pool_sets_labels_and_taints_and_keeps_the_others() -> None:
    node = obj(
        "w",
        labels={"kubernetes.io/hostname": "w", "old": "x", "tier": "cu"},
        spec={
            "taints": [
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "old", "effect": "NoSchedule"},
            ]
        },
    )
    taints = [{"key": "dedicated", "value": "ran", "effect": "NoSchedule"}]
    patch = join_patch(node, CTX, "ran", {"tier": "du"}, taints, drop_labels=["old", "absent"])
    assert patch == {
        "metadata": {"labels": {"tier": "du", POOL: "ran", "old": None}},
        "spec": {
            "taints": [
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "ran", "effect": "NoSchedule"},
            ]
        },
    }
    joined = {
        "metadata": {"labels": {"tier": "du", POOL: "ran"}},
        "spec": {"taints": patch["spec"]["taints"]},
    }
    assert join_patch(joined, CTX, "ran", {"tier": "du"}, taints) is None  # nothing to do


def test_leaving_a_pool_removes_only_what_the_pool_applied() -> None:
    node = obj(
        "w",
        labels={POOL: "ran", "tier": "du", "mine": "1"},
        spec={
            "taints": [
                {"key": "dedicated", "value": "ran", "effect": "NoSchedule"},
                {"key": "maintenance", "effect": "NoExecute"},
            ]
        },
    )
    taints = [{"key": "dedicated", "value": "ran", "effect": "NoSchedule"}]
    assert leave_patch(node, CTX, ["tier", "gone"], taints) == {
        "metadata": {"labels": {POOL: None, "tier": None}},
        "spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]},
    }
    only = obj("w", labels={POOL: "ran"}, spec={"taints": taints})
    assert leave_patch(only, CTX, [], taints) == {
        "metadata": {"labels": {POOL: None}},
        "spec": {"taints": None},  # the last taint: the field goes
    }
    assert leave_patch(obj("w"), CTX, ["tier"], taints) is None


def test_reserved_labels_are_refused() -> None:
    check_user_labels({"tier": "du", "node-role.kubernetes.io/du": ""}, CTX)
    for key in (POOL, m.DEFAULT_TENANT_LABEL, m.DEFAULT_SHARED_LABEL, m.MACHINESET_POOL_LABEL):
        with pytest.raises(InvalidRequestError, match="reserved"):
            check_user_labels({key: "x"}, CTX)
    with pytest.raises(InvalidRequestError, match="reserved"):
        check_user_labels({"cluster.x-k8s.io/cluster-name": "x"}, CTX)


# Pools of ResourcePool objects in the mapping -------------------------------------------------


def test_a_resource_pool_object_takes_its_label_pool_over() -> None:
    rp = obj(
        "edge",
        labels={m.DEFAULT_TENANT_LABEL: "acme"},
        annotations={m.MANAGED_BY_ANNOTATION: "netweave"},
        spec={
            "description": "Edge servers",
            "location": "Site A",
            "globalLocationId": "ES-A",
            "instanceType": "m5",
            "replicas": 2,
            "labels": {"tier": "du"},
            "taints": [{"key": "dedicated", "effect": "NoSchedule"}],
        },
    )
    node = obj("w-1", labels={POOL: "edge", "topology.kubernetes.io/zone": "a"})
    pools = m.resource_pools_by_name([rp, obj("default")], CTX)
    assert list(pools) == ["edge"]  # never a ResourcePool for the default pool
    pool_id = expected_id("resourcepool", "uid-edge")
    assert m.pool_id_for_node(node, CTX, {}, pools) == pool_id
    assert m.pool_id_for_node(node, CTX, {}, {}) == m.label_pool_id("edge", CTX)
    pool = m.resource_pool_for_object(rp, [node], CTX)
    assert pool.resource_pool_id == pool_id
    assert (pool.name, pool.description, pool.location, pool.global_location_id) == (
        "edge",
        "Edge servers",
        "Site A",
        "ES-A",
    )
    assert pool.extensions == {
        "source": "ResourcePool",
        "poolLabel": POOL,
        "nodeSelector": {POOL: "edge"},
        "labels": {"tier": "du"},
        "taints": [{"key": "dedicated", "effect": "NoSchedule"}],
        "zones": ["a"],
        "regions": [],
        "nodeCount": 1,
        "instanceType": "m5",
        "replicas": 2,
        "managedBy": "netweave",
        "tenant": "acme",
    }
    empty = m.resource_pool_for_object(obj("bare"), [], CTX)
    assert empty.description == "Nodes of cluster ran in ResourcePool bare"
    assert (empty.location, empty.global_location_id) == ("Madrid", CTX.global_location_id)
    assert "tenant" not in empty.extensions and "managedBy" not in empty.extensions


def test_locating_a_pool_by_its_id() -> None:
    ms = obj("du", metadata={"namespace": "capi"})
    rp = obj("ran")
    owned = obj(
        "m-1",
        labels={POOL: "ran"},  # the owning MachineSet wins over the label
        annotations={
            "cluster.x-k8s.io/owner-kind": "MachineSet",
            "cluster.x-k8s.io/owner-name": "du",
            "cluster.x-k8s.io/cluster-namespace": "capi",
        },
    )
    catalog = Catalog(
        nodes=[
            owned,
            obj("w-1", labels={POOL: "ran"}),
            obj("e-1", labels={POOL: "edge"}),
            obj("p"),
        ],
        machinesets=[ms],
        resource_pools=[rp],
    )
    found = locate_pool(m.machineset_pool_id(ms, CTX), catalog, CTX)
    assert found is not None and (found.source, found.name, found.obj) == ("MachineSet", "du", ms)
    found = locate_pool(m.resource_pool_object_id(rp, CTX), catalog, CTX)
    assert found is not None and (found.source, found.obj) == ("ResourcePool", rp)
    found = locate_pool(m.label_pool_id("edge", CTX), catalog, CTX)
    assert found is not None and (found.source, found.name, found.obj) == ("label", "edge", None)
    found = locate_pool(m.label_pool_id(None, CTX), catalog, CTX)
    assert found is not None and (found.source, found.name) == ("label", "default")
    assert "default" in found.describe("id")
    # The label pool a ResourcePool took over is not a pool any more; neither is a stranger.
    assert locate_pool(m.label_pool_id("ran", CTX), catalog, CTX) is None
    assert locate_pool(str(uuid.uuid4()), catalog, CTX) is None


# Draining ------------------------------------------------------------------------------------


def test_a_drain_leaves_daemonset_and_mirror_pods() -> None:
    assert evictable(obj("web", metadata={"ownerReferences": [{"kind": "ReplicaSet"}]}))
    daemon = {"kind": "DaemonSet", "name": "agent", "controller": True}
    assert not evictable(obj("agent", metadata={"ownerReferences": [daemon]}))
    not_controller = {**daemon, "controller": False}
    assert evictable(obj("adopted", metadata={"ownerReferences": [not_controller]}))
    assert not evictable(obj("static", annotations={"kubernetes.io/config.mirror": "abc"}))


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        (None, {"app": "web"}, True),
        ({}, {}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "1"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]},
            {"app": "b"},
            True,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]},
            {"app": "a"},
            False,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"app": ""}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {"app": "a"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {}, True),
    ],
)
def test_disruption_budget_selectors(
    selector: Json | None, labels: dict[str, str], selected: bool
) -> None:
    assert selector_matches(selector, labels) is selected


def test_a_refusal_names_its_causes() -> None:
    refusal = Reply(
        429,
        {
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "details": {"causes": [{"reason": "DisruptionBudget", "message": "pdb web needs 2"}]},
        },
    )
    assert refusal.causes == ["pdb web needs 2"]
    assert refusal.message.startswith("Cannot evict pod")
    assert Reply(429, {"details": "odd"}).causes == []
    assert Reply(500, {}).message == ""
