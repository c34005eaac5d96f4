"""Which Kubernetes object stands behind a resource pool id, and what a write may touch.

The inventory hands out pool ids (UUIDv5 of a MachineSet uid, a ``ResourcePool`` uid or
a label value); a write gets an id back and must find the object again.  Ids are not
reversible, so :func:`locate_pool` recomputes them over the known objects with the same
functions the mapping uses: a pool is found exactly when the inventory shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.lifecycle import Taint
from netweave.errors import ConflictError, InvalidRequestError

__all__ = [
    "Catalog",
    "PoolRef",
    "check_user_labels",
    "locate_pool",
    "object_labels",
    "require_managed",
    "taint_dicts",
]

JsonMap = Mapping[str, Any]
PoolSource = Literal["MachineSet", "ResourcePool", "label"]

#: label prefixes netweave or cluster-api read meaning from, never a pool's own labels
_RESERVED_PREFIXES: Final = ("o2ims.netweave.io/", "cluster.x-k8s.io/")


@dataclass(frozen=True, slots=True)
class Catalog:
    """The objects pools come from: nodes, MachineSets, ``ResourcePool`` objects."""

    nodes: Sequence[JsonMap] = ()
    machinesets: Sequence[JsonMap] = ()
    resource_pools: Sequence[JsonMap] = ()


@dataclass(frozen=True, slots=True)
class PoolRef:
    """A located pool: its source and object (``None`` for a label or the default pool)."""

    source: PoolSource
    name: str
    obj: JsonMap | None = None

    def describe(self, pool_id: str) -> str:
        if self.source == "label":
            return f"resource pool {pool_id} ({self.name}, a pool of labelled nodes)"
        namespace = ""
        if self.source == "MachineSet" and self.obj is not None:
            namespace = f"{m.machineset_key(self.obj)[0]}/"
        return f"resource pool {pool_id} ({self.source} {namespace}{self.name})"


def locate_pool(pool_id: str, catalog: Catalog, ctx: m.MappingContext) -> PoolRef | None:
    """The object behind ``pool_id`` among ``catalog``'s; None when no pool has that id."""
    by_key = {m.machineset_key(ms): ms for ms in catalog.machinesets}
    by_name = m.resource_pools_by_name(catalog.resource_pools, ctx)
    for ms in catalog.machinesets:
        if m.machineset_pool_id(ms, ctx) == pool_id:
            return PoolRef("MachineSet", m.machineset_key(ms)[1], ms)
    for name, obj in by_name.items():
        if m.resource_pool_object_id(obj, ctx) == pool_id:
            return PoolRef("ResourcePool", name, obj)
    for node in catalog.nodes:
        if m.pool_id_for_node(node, ctx, by_key, by_name) == pool_id:
            value = m.pool_label_value(node, ctx)
            return PoolRef("label", value or ctx.default_pool_name)
    return None


def object_labels(obj: JsonMap) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def check_user_labels(labels: Mapping[str, str], ctx: m.MappingContext) -> None:
    """Refuse pool labels that would change what netweave or cluster-api read from labels:
    pool membership, ownership, sharing, cluster-api's matching labels."""
    reserved = {ctx.pool_label, ctx.tenant_label, ctx.shared_label}
    for key in labels:
        if key in reserved or key.startswith(_RESERVED_PREFIXES):
            raise InvalidRequestError(
                f"label {key!r} is reserved (pool membership, ownership or cluster-api's); "
                "choose another key"
            )


def taint_dicts(taints: Iterable[Taint]) -> list[dict[str, str]]:
    """Taints as Kubernetes writes them (``value`` only when set)."""
    out = []
    for taint in taints:
        item = {"key": taint.key, "effect": taint.effect}
        if taint.value:
            item["value"] = taint.value
        out.append(item)
    return out


def require_managed(obj: JsonMap, what: str) -> None:
    """Refuse to change or delete a pool object netweave did not create."""
    if not m.is_managed(obj):
        raise ConflictError(
            f"{what} is not managed by netweave (it lacks the annotation "
            f"{m.MANAGED_BY_ANNOTATION}: {m.MANAGED_BY}); netweave changes and deletes only "
            "the pools it created"
        )
