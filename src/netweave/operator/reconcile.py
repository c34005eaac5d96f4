"""Reconciling one ``O2IMSGateway``: apply its objects, prune, report, clean up.

Every reconciliation applies the whole desired state (server-side apply is idempotent), so
creation, a changed spec (replicas, version, anything), an operator restart and the periodic
resync are one code path. Errors are reported on the status before they reach kopf:

* the spec cannot be deployed (:class:`~netweave.operator.spec.SpecError`): ``Degraded``
  ``InvalidSpec`` and :class:`kopf.PermanentError`: nothing is retried until the spec changes;
  the objects of the last good spec are left running;
* the API server refused an object as invalid (400, 422): ``ApplyFailed``, permanent too;
* anything else (no answer, 403 while RBAC is being fixed, 404 for a kind not served yet,
  conflicts, 5xx): ``ApplyFailed`` and :class:`kopf.TemporaryError`, retried after a delay.

Deletion: the namespaced objects carry a controller owner reference to the gateway, so
Kubernetes' garbage collector deletes them with it (``kubectl delete --cascade=orphan``
keeps them, as for any owner). The ClusterRole and ClusterRoleBinding cannot be owned by a
namespaced object, so the deletion handler (behind kopf's finalizer) deletes them, after
checking their owner label names this gateway's uid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import kopf

from netweave.operator.kube import KubeClient, KubeError, gateway_path, object_path
from netweave.operator.manifests import (
    KIND,
    OWNER_UID_LABEL,
    Children,
    Manifest,
    ObjectRef,
    Owner,
    build,
    cluster_role_name,
    fullname,
)
from netweave.operator.spec import GatewaySpec, SpecError, check
from netweave.operator.status import Condition, merge_conditions, rollout_conditions

__all__ = ["Reconciler"]

_STATUS_ATTEMPTS: Final = 5


def owner_of(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


@dataclass(frozen=True)
class _Outcome:
    """What a reconciliation reports on the status."""

    generation: int
    degraded: Condition
    children: Children | None = None
    deployment: Manifest | None = None


class Reconciler:
    """The operator's work on the API server (kopf calls it; see :mod:`.runner`)."""

    def __init__(self, kube: KubeClient, *, version: str, retry_delay: float = 30.0) -> None:
        self.kube = kube
        #: the image tag of a spec naming no version: the operator's own release
        self.version = version
        #: seconds before a reconciliation that failed for a transient reason runs again
        self.retry_delay = retry_delay
        self._locks: dict[str, asyncio.Lock] = {}

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        """Apply the objects of the gateway's spec; report the outcome on its status.

        One reconciliation of a gateway at a time (kopf runs the periodic resync beside
        the change handlers), each on the gateway as the server has it now: the last one
        to run applies the newest spec, never one a handler was given before a change.
        """
        owner = owner_of(body)
        async with self._locks.setdefault(owner.uid, asyncio.Lock()):
            try:
                current = await self.kube.get(gateway_path(owner.namespace, owner.name))
                if current is None or current["metadata"]["uid"] != owner.uid:
                    return  # deleted meanwhile
                if current["metadata"].get("deletionTimestamp"):
                    return  # being deleted: the deletion handler's turn
                await self._reconcile(owner, current)
            except KubeError as exc:  # reading or reporting
                raise kopf.TemporaryError(str(exc), delay=self.retry_delay) from None

    async def _reconcile(self, owner: Owner, body: Mapping[str, Any]) -> None:
        generation = int(body["metadata"].get("generation", 0))
        try:
            spec = GatewaySpec.parse(body.get("spec"))
            check(spec)
        except SpecError as exc:
            await self._report(owner, _Outcome(generation, _degraded("InvalidSpec", str(exc))))
            raise kopf.PermanentError(f"invalid spec: {exc}") from None
        served = await self.kube.serves("policy/v1", "PodDisruptionBudget")
        children = build(
            owner,
            spec,
            version=self.version,
            pdb_api_version="policy/v1" if served else "policy/v1beta1",
        )
        try:
            deployment = await self._apply(owner, children)
        except KubeError as exc:
            await self._report(owner, _Outcome(generation, _degraded("ApplyFailed", str(exc))))
            if exc.status in (400, 422):
                raise kopf.PermanentError(str(exc)) from None
            raise kopf.TemporaryError(str(exc), delay=self.retry_delay) from None
        reconciled = Condition("Degraded", False, "Reconciled", "every object is applied")
        await self._report(owner, _Outcome(generation, reconciled, children, deployment))

    async def deployment_changed(self, deployment: Mapping[str, Any]) -> None:
        """Refresh ``Progressing`` and ``Ready`` of the gateway owning ``deployment``."""
        meta = deployment.get("metadata") or {}
        for reference in meta.get("ownerReferences") or ():
            if reference.get("kind") == KIND and reference.get("controller"):
                owner = Owner(reference["name"], meta["namespace"], reference["uid"])
                await self._report(owner, None, dict(deployment))

    async def delete(self, body: Mapping[str, Any]) -> None:
        """Delete the gateway's cluster-scoped objects (the namespaced ones are the garbage
        collector's: they are owned)."""
        owner = owner_of(body)
        name = cluster_role_name(owner)
        # after a reconciliation in flight (which would apply them again), not during it
        async with self._locks.setdefault(owner.uid, asyncio.Lock()):
            try:
                for kind in ("ClusterRoleBinding", "ClusterRole"):
                    path = object_path("rbac.authorization.k8s.io/v1", kind, None, name)
                    found = await self.kube.get(path)
                    labels = (found or {}).get("metadata", {}).get("labels") or {}
                    if found is not None and labels.get(OWNER_UID_LABEL) == owner.uid:
                        await self.kube.delete(path, found["metadata"]["uid"])
            except KubeError as exc:
                raise kopf.TemporaryError(str(exc), delay=self.retry_delay) from None
        self._locks.pop(owner.uid, None)

    async def _apply(self, owner: Owner, children: Children) -> Manifest:
        """Apply every object (cluster-scoped first: the binding before the pods need it),
        delete the optional ones the spec no longer makes; the Deployment as stored."""
        deployment: Manifest = {}
        for obj in [*children.cluster, *children.namespaced]:
            if not await self.kube.serves(obj["apiVersion"], obj["kind"]):
                raise KubeError(
                    404,
                    "NotServed",
                    f"the cluster does not serve {obj['apiVersion']} "
                    "(tls.issuerRef needs cert-manager)",
                    f"{obj['kind']} {obj['metadata']['name']}",
                )
            try:
                stored = await self.kube.apply(obj)
            except KubeError as exc:
                where = f"{obj['kind']} {obj['metadata']['name']}"
                raise KubeError(exc.status, exc.reason, exc.message, where) from None
            if obj["kind"] == "Deployment":
                deployment = stored
        for ref in children.absent:
            await self._prune(owner, ref)
        return deployment

    async def _prune(self, owner: Owner, ref: ObjectRef) -> None:
        if not await self.kube.serves(ref.api_version, ref.kind):
            return
        path = object_path(ref.api_version, ref.kind, owner.namespace, ref.name)
        found = await self.kube.get(path)
        if found is None:
            return
        owners = found["metadata"].get("ownerReferences") or ()
        if any(reference.get("uid") == owner.uid for reference in owners):
            await self.kube.delete(path, found["metadata"]["uid"])

    async def _report(
        self, owner: Owner, outcome: _Outcome | None, deployment: Manifest | None = None
    ) -> None:
        """Write the status: ``outcome`` of a reconciliation, or (None) a Deployment's
        change. Read, compute, write with the read ``resourceVersion``; again on a conflict
        (kopf writes the object too)."""
        path = gateway_path(owner.namespace, owner.name)
        for _ in range(_STATUS_ATTEMPTS):
            body = await self.kube.get(path)
            if body is None or body["metadata"]["uid"] != owner.uid:
                return  # deleted (or replaced) meanwhile
            current: dict[str, Any] = dict(body.get("status") or {})
            status = await self._status(owner, current, outcome, deployment)
            if all(current.get(key) == value for key, value in status.items()):
                return
            try:
                await self.kube.patch_status(
                    owner.namespace, owner.name, status, body["metadata"]["resourceVersion"]
                )
            except KubeError as exc:
                if exc.status == 409:
                    continue
                raise
            return

    async def _status(
        self,
        owner: Owner,
        current: Mapping[str, Any],
        outcome: _Outcome | None,
        deployment: Manifest | None,
    ) -> dict[str, Any]:
        conditions = current.get("conditions") or []
        status: dict[str, Any] = {}
        if outcome is not None:
            generation = outcome.generation
            status["observedGeneration"] = generation
            updates = [outcome.degraded]
            deployment = outcome.deployment or None
            if outcome.children is not None:
                status["image"] = outcome.children.image
                status["version"] = outcome.children.version
        else:
            generation = int(current.get("observedGeneration", 0))
            updates = []
        degraded = outcome.degraded if outcome is not None else _current(conditions, "Degraded")
        if deployment is None:
            deployment = await self._deployment(owner)
        updates += rollout_conditions(deployment, degraded is not None and degraded.status)
        if deployment is not None:
            status["replicas"] = int((deployment.get("spec") or {}).get("replicas", 1))
            available = (deployment.get("status") or {}).get("availableReplicas", 0)
            status["availableReplicas"] = int(available)
        merged = merge_conditions(conditions, updates, generation)
        # lastTransitionTime aside, an unchanged condition set is not written again
        if _strip_times(merged) != _strip_times(conditions):
            status["conditions"] = merged
        return status

    async def _deployment(self, owner: Owner) -> Manifest | None:
        """The gateway's Deployment, if it exists and is this gateway's."""
        found = await self.kube.get(
            object_path("apps/v1", "Deployment", owner.namespace, fullname(owner.name))
        )
        if found is None:
            return None
        owners = found["metadata"].get("ownerReferences") or ()
        return found if any(ref.get("uid") == owner.uid for ref in owners) else None


def _degraded(reason: str, message: str) -> Condition:
    return Condition("Degraded", True, reason, message)


def _current(conditions: Any, kind: str) -> Condition | None:
    for condition in conditions or ():
        if condition.get("type") == kind:
            return Condition(
                kind,
                condition.get("status") == "True",
                str(condition.get("reason", "")),
                str(condition.get("message", "")),
            )
    return None


def _strip_times(conditions: Any) -> list[dict[str, Any]]:
    return [
        {key: value for key, value in c.items() if key != "lastTransitionTime"}
        for c in conditions or ()
    ]
