"""Pools as cluster-api MachineSets: create by cloning a template, update, scale, delete.

A new pool is a MachineSet cloned from a template MachineSet (the configured one, else
the first by namespace/name): the same cluster, Kubernetes version, bootstrap config and
infrastructure template, so its machines have the template's shape.  cluster-api keeps the
machine shape (instance type) in the infrastructure template, and node taints in the
bootstrap config: netweave records the requested instance type and taints in annotations
(shown in the pool's extensions) and does not create infrastructure templates.

The selector and machine template labels are keyed on ``o2ims.netweave.io/pool=<name>``,
never on the template's labels: a MachineSet cloned from one a MachineDeployment owns must
not be adopted by that MachineDeployment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.pools import check_user_labels, require_managed, taint_dicts
from netweave.adapters.kubernetes.rest import (
    CAPI,
    KubeWriter,
    machine_path,
    machineset_path,
)
from netweave.adapters.lifecycle import PoolChange, PoolRequest, Progress
from netweave.errors import ConflictError, InvalidRequestError

__all__ = ["MachineSetWriter", "machineset_body"]

JsonMap = Mapping[str, Any]

CLUSTER_NAME_LABEL: Final = "cluster.x-k8s.io/cluster-name"
#: cluster-api's MachineSet delete policies remove machines carrying this first
DELETE_MACHINE_ANNOTATION: Final = "cluster.x-k8s.io/delete-machine"
MACHINE_ANNOTATION: Final = "cluster.x-k8s.io/machine"
CLUSTER_NAMESPACE_ANNOTATION: Final = "cluster.x-k8s.io/cluster-namespace"
SET_NAME_LABEL: Final = "cluster.x-k8s.io/set-name"
_SCALE_ATTEMPTS: Final = 5
#: MachineSet spec fields a clone keeps besides the machine template
_KEPT_SPEC: Final = ("clusterName", "deletePolicy", "minReadySeconds")


def machineset_body(
    template: JsonMap, request: PoolRequest, ctx: m.MappingContext
) -> dict[str, Any]:
    """The MachineSet of a new pool, cloned from ``template`` (pure)."""
    namespace, _ = m.machineset_key(template)
    spec = template.get("spec") or {}
    machine_spec = {
        key: value
        for key, value in ((spec.get("template") or {}).get("spec") or {}).items()
        if key != "providerID"  # a template names no machine
    }
    cluster = str(spec.get("clusterName") or machine_spec.get("clusterName") or "")
    selector = {m.MACHINESET_POOL_LABEL: request.name}
    if cluster:
        selector[CLUSTER_NAME_LABEL] = cluster
    labels = {**request.labels, **selector}
    if request.tenant:
        labels[ctx.tenant_label] = request.tenant
    annotations = {
        m.MANAGED_BY_ANNOTATION: m.MANAGED_BY,
        m.LABELS_ANNOTATION: json.dumps(sorted(request.labels)),
    }
    optional = {
        m.DESCRIPTION_ANNOTATION: request.description,
        m.LOCATION_ANNOTATION: request.location,
        m.GLOBAL_LOCATION_ANNOTATION: request.global_location_id,
        m.INSTANCE_TYPE_ANNOTATION: request.instance_type,
        m.TAINTS_ANNOTATION: json.dumps(taint_dicts(request.taints)) if request.taints else None,
    }
    annotations.update({key: value for key, value in optional.items() if value})
    new_spec: dict[str, Any] = {key: spec[key] for key in _KEPT_SPEC if key in spec}
    replicas = request.replicas if request.replicas is not None else spec.get("replicas")
    if isinstance(replicas, int):
        new_spec["replicas"] = replicas
    new_spec["selector"] = {"matchLabels": selector}
    new_spec["template"] = {
        "metadata": {"labels": {**request.labels, **selector}},
        "spec": machine_spec,
    }
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineSet",
        "metadata": {
            "name": request.name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": new_spec,
    }


def _replace_labels(old_keys: list[str], new: Mapping[str, str]) -> dict[str, str | None]:
    """A merge patch of a label map: the old user labels go, the new ones come."""
    patch: dict[str, str | None] = {key: None for key in old_keys if key not in new}
    patch.update(new)
    return patch


def _recorded_labels(ms: JsonMap) -> list[str]:
    raw = ((ms.get("metadata") or {}).get("annotations") or {}).get(m.LABELS_ANNOTATION)
    try:
        keys = json.loads(raw or "[]")
    except ValueError:
        return []
    return [str(key) for key in keys] if isinstance(keys, list) else []


class MachineSetWriter:
    """Writes MachineSets (pool lifecycle) and Machines (retiring a node)."""

    def __init__(self, kube: KubeWriter, ctx: m.MappingContext, template: str | None) -> None:
        self._kube = kube
        self._ctx = ctx
        self._template = template

    async def create(self, request: PoolRequest) -> dict[str, Any]:
        """Create the pool's MachineSet; returns it as stored."""
        check_user_labels(request.labels, self._ctx)
        template = await self._find_template()
        body = machineset_body(template, request, self._ctx)
        namespace = body["metadata"]["namespace"]
        return (
            await self._kube.send(
                "POST",
                machineset_path(namespace),
                what=f"MachineSet {namespace}/{request.name}",
                body=body,
            )
        ).body

    async def _find_template(self) -> JsonMap:
        if self._template is not None:
            namespace, _, name = self._template.partition("/")
            reply = await self._kube.send(
                "GET",
                machineset_path(namespace, name),
                what=f"MachineSet {self._template}",
                accept=(404,),
            )
            if reply.status == 404 or not name:
                raise InvalidRequestError(
                    f"the template MachineSet {self._template} (machineset_template) does not "
                    "exist: a new pool clones its cluster, version, bootstrap and infrastructure"
                )
            return reply.body
        found = await self._kube.list(f"{CAPI}/machinesets", what="MachineSets")
        if not found:
            raise InvalidRequestError(
                "the cluster has no MachineSet to clone: a new pool is a MachineSet cloned from "
                "a template MachineSet (its cluster, version, bootstrap and infrastructure); "
                "create one, or configure machineset_template"
            )
        return min(found, key=m.machineset_key)

    async def update(self, ms: JsonMap, change: PoolChange) -> None:
        namespace, name = m.machineset_key(ms)
        what = f"MachineSet {namespace}/{name}"
        require_managed(ms, what)
        metadata: dict[str, Any] = {}
        spec: dict[str, Any] = {}
        annotations: dict[str, str | None] = {}
        if change.description is not None:
            annotations[m.DESCRIPTION_ANNOTATION] = change.description or None
        if change.labels is not None:
            check_user_labels(change.labels, self._ctx)
            labels = _replace_labels(_recorded_labels(ms), change.labels)
            annotations[m.LABELS_ANNOTATION] = json.dumps(sorted(change.labels))
            metadata["labels"] = labels
            spec["template"] = {"metadata": {"labels": labels}}
        if annotations:
            metadata["annotations"] = annotations
        patch = {key: value for key, value in (("metadata", metadata), ("spec", spec)) if value}
        if patch:
            await self._kube.merge_patch(machineset_path(namespace, name), patch, what=what)
        if change.replicas is not None:
            await self._kube.merge_patch(
                f"{machineset_path(namespace, name)}/scale",
                {"spec": {"replicas": change.replicas}},
                what=f"the scale of {what}",
            )

    async def delete(self, ms: JsonMap) -> None:
        """Delete a MachineSet netweave manages; its Machines go first (Foreground)."""
        namespace, name = m.machineset_key(ms)
        what = f"MachineSet {namespace}/{name}"
        require_managed(ms, what)
        await self._kube.send(
            "DELETE",
            machineset_path(namespace, name),
            what=what,
            body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"},
            accept=(404,),
        )

    async def scale_by(self, namespace: str, name: str, delta: int) -> int:
        """Add ``delta`` to the replicas through the scale subresource (never below 0);
        the new count.  Read-modify-write with the resourceVersion: concurrent scalers
        retry instead of losing an update."""
        path = f"{machineset_path(namespace, name)}/scale"
        what = f"the scale of MachineSet {namespace}/{name}"
        for _ in range(_SCALE_ATTEMPTS):
            scale = await self._kube.get(path, what=what)
            replicas = max(0, int((scale.get("spec") or {}).get("replicas") or 0) + delta)
            scale.setdefault("spec", {})["replicas"] = replicas
            reply = await self._kube.send("PUT", path, what=what, body=scale, accept=(409,))
            if reply.status != 409:
                return replicas
        raise ConflictError(f"{what} kept changing while netweave scaled it; try again")

    async def retire_machine(self, node: JsonMap, progress: Progress) -> bool:
        """Delete the Machine behind ``node`` so that it is not replaced: mark it for
        deletion, scale its MachineSet down by one, delete it.  False when the node names
        no Machine or the Machine does not exist."""
        annotations = (node.get("metadata") or {}).get("annotations") or {}
        name = annotations.get(MACHINE_ANNOTATION)
        if not name:
            return False
        namespace = annotations.get(CLUSTER_NAMESPACE_ANNOTATION) or "default"
        path, what = machine_path(namespace, name), f"Machine {namespace}/{name}"
        mark = {"metadata": {"annotations": {DELETE_MACHINE_ANNOTATION: "yes"}}}
        marked = await self._kube.merge_patch(path, mark, what=what, accept=(404,))
        if marked.status == 404:
            progress(f"{what} not found")
            return False
        progress(f"marked {what} for deletion")
        machineset = _machineset_of(marked.body)
        if machineset:
            replicas = await self.scale_by(namespace, machineset, -1)
            progress(f"scaled MachineSet {namespace}/{machineset} to {replicas} replicas")
        await self._kube.send("DELETE", path, what=what, accept=(404,))
        progress(f"deleted {what}")
        return True


def _machineset_of(machine: JsonMap) -> str:
    """The MachineSet owning a Machine (controller reference, else the set-name label)."""
    metadata = machine.get("metadata") or {}
    for ref in metadata.get("ownerReferences") or ():
        if ref.get("kind") == "MachineSet" and ref.get("name"):
            return str(ref["name"])
    return str((metadata.get("labels") or {}).get(SET_NAME_LABEL) or "")
