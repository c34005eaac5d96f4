"""Pools without cluster-api: a ``ResourcePool`` object plus the nodes labelled into it.

The ``ResourcePool`` custom resource (``deploy/crds/``, cluster-scoped,
``o2ims.oran.org/v1alpha1``) records the pool as requested; its members are the nodes
labelled ``<pool label>=<name>``.  Creating the pool claims free nodes: nodes in no pool
yet (no pool label, or the default pool's), not control-plane nodes, not being deleted,
matching the node selector (the instance type), by name, at most ``replicas`` of them.  A
claimed node gets the pool label, the pool's labels and its taints.  Nothing reconciles
later: a node that becomes free after the write is not claimed until the next update
that asks for more replicas.

Every node write is a merge patch carrying the resourceVersion read just before, so two
writers claiming the same free node cannot both win: the loser re-reads and re-checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.pools import (
    check_user_labels,
    object_labels,
    require_managed,
    taint_dicts,
)
from netweave.adapters.kubernetes.rest import (
    NODES,
    RESOURCE_POOLS,
    KubeWriter,
    resource_pool_path,
)
from netweave.adapters.lifecycle import PoolChange, PoolRequest
from netweave.errors import ConflictError

__all__ = [
    "INSTANCE_TYPE_LABEL",
    "ResourcePoolWriter",
    "is_free",
    "join_patch",
    "leave_patch",
    "resource_pool_body",
]

JsonMap = Mapping[str, Any]
NodePatch = Callable[[JsonMap], "dict[str, Any] | None"]
INSTANCE_TYPE_LABEL: Final = "node.kubernetes.io/instance-type"
_CONTROL_PLANE_LABELS: Final = (
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
)
_PATCH_ATTEMPTS: Final = 5


def resource_pool_body(request: PoolRequest, ctx: m.MappingContext) -> dict[str, Any]:
    """The ``ResourcePool`` object recording ``request`` (pure)."""
    spec: dict[str, Any] = {
        "description": request.description,
        "nodeSelector": (
            {INSTANCE_TYPE_LABEL: request.instance_type} if request.instance_type else {}
        ),
        "labels": dict(request.labels),
        "taints": taint_dicts(request.taints),
    }
    optional = {
        "location": request.location,
        "globalLocationId": request.global_location_id,
        "instanceType": request.instance_type,
        "replicas": request.replicas,
    }
    spec.update({key: value for key, value in optional.items() if value is not None})
    labels = {ctx.tenant_label: request.tenant} if request.tenant else {}
    return {
        "apiVersion": "o2ims.oran.org/v1alpha1",
        "kind": "ResourcePool",
        "metadata": {
            "name": request.name,
            "labels": labels,
            "annotations": {m.MANAGED_BY_ANNOTATION: m.MANAGED_BY},
        },
        "spec": spec,
    }


def is_free(node: JsonMap, selector: Mapping[str, str], ctx: m.MappingContext) -> bool:
    """Whether a pool may claim ``node``: in no pool, a worker, alive, matching ``selector``."""
    labels = object_labels(node)
    return (
        m.pool_label_value(node, ctx) is None
        and not any(label in labels for label in _CONTROL_PLANE_LABELS)
        and not (node.get("metadata") or {}).get("deletionTimestamp")
        and all(labels.get(key) == value for key, value in selector.items())
    )


def _taint_key(taint: Mapping[str, Any]) -> tuple[str, str]:
    return str(taint.get("key", "")), str(taint.get("effect", ""))


def _node_taints(node: JsonMap) -> list[dict[str, Any]]:
    return [dict(t) for t in (node.get("spec") or {}).get("taints") or ()]


def join_patch(
    node: JsonMap,
    ctx: m.MappingContext,
    pool: str,
    labels: Mapping[str, str],
    taints: Sequence[Mapping[str, Any]],
    *,
    drop_labels: Sequence[str] = (),
) -> dict[str, Any] | None:
    """The merge patch putting ``node`` in ``pool`` with its labels and taints (and without
    ``drop_labels``, labels the pool no longer has); None when the node already is so."""
    current = object_labels(node)
    wanted: dict[str, str] = {**labels, ctx.pool_label: pool}
    label_patch: dict[str, str | None] = {k: v for k, v in wanted.items() if current.get(k) != v}
    label_patch.update({k: None for k in drop_labels if k in current and k not in wanted})
    present = _node_taints(node)
    wanted_keys = {_taint_key(t) for t in taints}
    new_taints = [t for t in present if _taint_key(t) not in wanted_keys]
    new_taints.extend(dict(t) for t in taints)
    patch: dict[str, Any] = {}
    if label_patch:
        patch["metadata"] = {"labels": label_patch}
    if _comparable(new_taints) != _comparable(present):
        patch["spec"] = {"taints": new_taints}
    return patch or None


def leave_patch(
    node: JsonMap,
    ctx: m.MappingContext,
    labels: Sequence[str],
    taints: Sequence[Mapping[str, Any]],
) -> dict[str, Any] | None:
    """The merge patch taking ``node`` out of its pool: the pool label, the pool's labels
    and taints removed; None when there is nothing to remove."""
    current = object_labels(node)
    label_patch = {k: None for k in (ctx.pool_label, *labels) if k in current}
    applied = {_taint_key(t) for t in taints}
    present = _node_taints(node)
    kept = [t for t in present if _taint_key(t) not in applied]
    patch: dict[str, Any] = {}
    if label_patch:
        patch["metadata"] = {"labels": label_patch}
    if len(kept) != len(present):
        patch["spec"] = {"taints": kept or None}
    return patch or None


def _comparable(taints: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((*_taint_key(t), str(t.get("value") or "")) for t in taints)


def _name(obj: JsonMap) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _spec(obj: JsonMap) -> JsonMap:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


class ResourcePoolWriter:
    """Creates, updates and deletes ``ResourcePool`` pools and labels their nodes."""

    def __init__(self, kube: KubeWriter, ctx: m.MappingContext) -> None:
        self._kube = kube
        self._ctx = ctx

    async def create(self, request: PoolRequest) -> dict[str, Any]:
        """Create the object, then claim nodes; returns the object as stored."""
        check_user_labels(request.labels, self._ctx)
        taken = await self.members(request.name)
        if taken:
            raise ConflictError(
                f"resource pool {request.name} already exists: nodes labelled "
                f"{self._ctx.pool_label}={request.name} form it"
            )
        body = resource_pool_body(request, self._ctx)
        created = (
            await self._kube.send(
                "POST", RESOURCE_POOLS, what=f"ResourcePool {request.name}", body=body
            )
        ).body
        await self._claim(created, request.replicas)
        return created

    async def members(self, name: str) -> list[dict[str, Any]]:
        """The nodes labelled into pool ``name``, by name."""
        selector = {"labelSelector": f"{self._ctx.pool_label}={name}"}
        nodes = await self._kube.list(NODES, what=f"nodes of pool {name}", params=selector)
        return sorted(nodes, key=_name)

    async def _claim(self, pool: JsonMap, count: int | None) -> int:
        """Claim free nodes for ``pool`` (all of them, or ``count``); how many it got."""
        if count is not None and count <= 0:
            return 0
        spec = _spec(pool)
        selector = {str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()}
        params = (
            {"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}
            if selector
            else {}
        )
        candidates = await self._kube.list(NODES, what="nodes", params=params)
        claimed = 0
        for node in sorted(candidates, key=_name):
            if count is not None and claimed >= count:
                break
            if is_free(node, selector, self._ctx) and await self._join(
                _name(node), pool, only_if_free=selector
            ):
                claimed += 1
        return claimed

    async def _join(
        self,
        node_name: str,
        pool: JsonMap,
        *,
        only_if_free: Mapping[str, str] | None = None,
        drop_labels: Sequence[str] = (),
    ) -> bool:
        spec = _spec(pool)
        labels = {str(k): str(v) for k, v in (spec.get("labels") or {}).items()}
        taints = [t for t in spec.get("taints") or () if isinstance(t, Mapping)]

        def patch(node: JsonMap) -> dict[str, Any] | None:
            if only_if_free is not None and not is_free(node, only_if_free, self._ctx):
                return None
            return join_patch(node, self._ctx, _name(pool), labels, taints, drop_labels=drop_labels)

        return await self._patch_node(node_name, patch)

    async def _leave(self, node_name: str, pool: JsonMap, *, also: Sequence[str] = ()) -> bool:
        """Take the node out of the pool; ``also``: more labels the pool applied before."""
        spec = _spec(pool)
        labels = [*(str(k) for k in spec.get("labels") or {}), *also]
        taints = [t for t in spec.get("taints") or () if isinstance(t, Mapping)]
        name = _name(pool)

        def patch(node: JsonMap) -> dict[str, Any] | None:
            if object_labels(node).get(self._ctx.pool_label) != name:
                return None  # moved elsewhere meanwhile: not ours to change
            return leave_patch(node, self._ctx, labels, taints)

        return await self._patch_node(node_name, patch)

    async def _patch_node(self, name: str, compute: NodePatch) -> bool:
        """Read the node, patch it as ``compute(node)`` says with that resourceVersion as a
        precondition, and retry on a conflict.  False when there was nothing to do or the
        node is gone."""
        what = f"node {name}"
        for _ in range(_PATCH_ATTEMPTS):
            read = await self._kube.send("GET", f"{NODES}/{name}", what=what, accept=(404,))
            if read.status == 404:
                return False
            patch = compute(read.body)
            if patch is None:
                return False
            version = (read.body.get("metadata") or {}).get("resourceVersion")
            patch.setdefault("metadata", {})["resourceVersion"] = version
            reply = await self._kube.merge_patch(
                f"{NODES}/{name}", patch, what=what, accept=(404, 409)
            )
            if reply.status != 409:
                return reply.status < 400
        raise ConflictError(f"{what} kept changing while netweave labelled it; try again")

    async def update(self, pool: JsonMap, change: PoolChange) -> None:
        """Record the change, then bring the members in line: labels, taints, count."""
        name = _name(pool)
        what = f"ResourcePool {name}"
        require_managed(pool, what)
        old_labels = {str(k): str(v) for k, v in (_spec(pool).get("labels") or {}).items()}
        spec_patch: dict[str, Any] = {}
        if change.description is not None:
            spec_patch["description"] = change.description
        if change.labels is not None:
            check_user_labels(change.labels, self._ctx)
            spec_patch["labels"] = {
                **{key: None for key in old_labels if key not in change.labels},
                **change.labels,
            }
        if change.replicas is not None:
            spec_patch["replicas"] = change.replicas
        if spec_patch:
            pool = (
                await self._kube.merge_patch(
                    resource_pool_path(name), {"spec": spec_patch}, what=what
                )
            ).body
        members = await self.members(name)
        keep = len(members) if change.replicas is None else min(change.replicas, len(members))
        dropped = [
            key
            for key in old_labels
            if key not in (old_labels if change.labels is None else change.labels)
        ]
        for node in reversed(members[keep:]):  # the last by name go first
            await self._leave(_name(node), pool, also=dropped)
        for node in members[:keep]:
            await self._join(_name(node), pool, drop_labels=dropped)
        if change.replicas is not None and change.replicas > len(members):
            await self._claim(pool, change.replicas - len(members))

    async def delete(self, pool: JsonMap, *, force: bool) -> None:
        """Release the members (refused while there are some, unless ``force``), then delete
        the object."""
        name = _name(pool)
        what = f"ResourcePool {name}"
        require_managed(pool, what)
        members = await self.members(name)
        if members and not force:
            names = ", ".join(_name(node) for node in members[:5])
            more = f" and {len(members) - 5} more" if len(members) > 5 else ""
            raise ConflictError(
                f"resource pool {name} still has {len(members)} node(s) ({names}{more}); "
                "delete with force to release them from the pool"
            )
        for node in members:
            await self._leave(_name(node), pool)
        await self._kube.send("DELETE", resource_pool_path(name), what=what, accept=(404,))
