"""Draining a node before it is removed: cordon, evict, wait, as ``kubectl drain`` does.

Every pod on the node (field selector ``spec.nodeName``) is evicted through the Eviction
API except DaemonSet pods (their controller would put them right back, and they die with
the node) and mirror pods (the kubelet owns them).  The Eviction API honours
PodDisruptionBudgets: an eviction that would break one is refused with 429, and is
retried until the drain timeout; then the drain fails naming the pod and the budget.  A
drain never deletes a pod directly, so a budget is never bypassed.

The eviction's API version is the one the server announces for ``pods/eviction``
(``policy/v1`` from Kubernetes 1.22, ``policy/v1beta1`` before); budgets are read in the
same version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from netweave.adapters.kubernetes.rest import NODES, KubeWriter, Reply
from netweave.adapters.lifecycle import Progress
from netweave.errors import BackendError, ConflictError, O2Error

__all__ = ["Drainer", "PodRef", "evictable", "selector_matches"]

JsonMap = Mapping[str, Any]
MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
_DEFAULT_POLICY: Final = "policy/v1"
#: how many pods a progress line or an error names before "and N more"
_NAMED: Final = 5


@dataclass(frozen=True, slots=True)
class PodRef:
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def _pod_ref(pod: JsonMap) -> PodRef:
    metadata = pod.get("metadata") or {}
    return PodRef(
        str(metadata.get("namespace", "")), str(metadata.get("name", "")), str(metadata.get("uid"))
    )


def evictable(pod: JsonMap) -> bool:
    """Whether a drain evicts ``pod``: not a mirror pod, not owned by a DaemonSet."""
    metadata = pod.get("metadata") or {}
    if MIRROR_ANNOTATION in (metadata.get("annotations") or {}):
        return False
    owners = metadata.get("ownerReferences") or ()
    return not any(ref.get("kind") == "DaemonSet" and ref.get("controller") for ref in owners)


def selector_matches(selector: JsonMap | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (``matchLabels``, ``matchExpressions``) selects ``labels``.

    An empty selector selects everything, as for a PodDisruptionBudget in ``policy/v1``.
    """
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = set(expression.get("values") or ())
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _listing(pods: Sequence[PodRef]) -> str:
    names = ", ".join(str(pod) for pod in pods[:_NAMED])
    return names + (f" and {len(pods) - _NAMED} more" if len(pods) > _NAMED else "")


class Drainer:
    """Cordons and drains nodes; ``timeout`` bounds a whole drain, evictions and waiting."""

    def __init__(self, kube: KubeWriter, *, timeout: float, grace_period: int | None) -> None:
        self._kube = kube
        self._timeout = timeout
        self._grace_period = grace_period
        self._interval = min(2.0, max(0.05, timeout / 20))
        self._policy: str | None = None

    async def cordon(self, node: str) -> bool:
        """Mark the node unschedulable; True when this call did (it was not already)."""
        what = f"node {node}"
        current = await self._kube.get(f"{NODES}/{node}", what=what)
        if (current.get("spec") or {}).get("unschedulable") is True:
            return False
        await self._kube.merge_patch(
            f"{NODES}/{node}", {"spec": {"unschedulable": True}}, what=what
        )
        return True

    async def uncordon(self, node: str) -> None:
        await self._kube.merge_patch(
            f"{NODES}/{node}", {"spec": {"unschedulable": None}}, what=f"node {node}", accept=(404,)
        )

    async def drain(self, node: str, progress: Progress) -> None:
        """Evict the node's pods and wait until they are gone, within the timeout."""
        deadline = time.monotonic() + self._timeout
        labels = {
            _pod_ref(pod): (pod.get("metadata") or {}).get("labels") or {}
            for pod in await self._pods(node)
            if evictable(pod)
        }
        pods = sorted(labels, key=str)
        if not pods:
            progress(f"no pods to evict from node {node}")
            return
        progress(f"evicting {len(pods)} pod(s) from node {node}: {_listing(pods)}")
        pending = list(pods)
        refused: dict[PodRef, str] = {}
        while True:
            for pod in list(pending):
                refusal = await self._evict(pod)
                if refusal is None:
                    pending.remove(pod)
                elif pod not in refused:
                    refused[pod] = await self._reason(pod, labels[pod], refusal)
                    progress(f"eviction of pod {pod} refused ({refused[pod]}); retrying")
            if not pending:
                break
            if time.monotonic() + self._interval > deadline:
                blocked = pending[0]
                raise ConflictError(
                    f"cannot drain node {node}: eviction of pod {blocked} refused for "
                    f"{self._timeout:g} s (drain timeout) by {refused[blocked]}"
                    + (f"; also blocked: {_listing(pending[1:])}" if len(pending) > 1 else "")
                )
            await asyncio.sleep(self._interval)
        progress(f"waiting for {len(pods)} pod(s) to terminate on node {node}")
        await self._wait_gone(node, pods, deadline)
        progress(f"drained node {node}")

    async def _pods(self, node: str) -> list[dict[str, Any]]:
        return await self._kube.list(
            "/api/v1/pods",
            what=f"pods on node {node}",
            params={"fieldSelector": f"spec.nodeName={node}"},
        )

    async def _evict(self, pod: PodRef) -> Reply | None:
        """Ask for the pod's eviction; None when it is accepted or the pod is gone (404, or
        409: a new pod of that name, which the uid precondition spares), else the refusal
        (429: a disruption budget, or the server's rate limits)."""
        options: dict[str, Any] = {"preconditions": {"uid": pod.uid}}
        if self._grace_period is not None:
            options["gracePeriodSeconds"] = self._grace_period
        body = {
            "apiVersion": await self._policy_version(),
            "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            "deleteOptions": options,
        }
        reply = await self._kube.send(
            "POST",
            f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/eviction",
            what=f"eviction of pod {pod}",
            body=body,
            accept=(404, 409, 429),
        )
        return reply if reply.status == 429 else None

    async def _reason(self, pod: PodRef, labels: Mapping[str, str], refusal: Reply) -> str:
        """Why an eviction was refused, naming the PodDisruptionBudgets selecting the pod
        (when they can be read; the server's message names the budget anyway)."""
        detail = "; ".join(cause for cause in refusal.causes if cause) or refusal.message
        path = f"/apis/{await self._policy_version()}/namespaces/{pod.namespace}"
        try:
            budgets = await self._kube.list(
                f"{path}/poddisruptionbudgets", what=f"PodDisruptionBudgets of {pod.namespace}"
            )
        except O2Error:
            budgets = []
        names = [
            f"{pod.namespace}/{(b.get('metadata') or {}).get('name', '')}"
            for b in budgets
            if selector_matches((b.get("spec") or {}).get("selector"), labels)
        ]
        if names:
            named = f"PodDisruptionBudget {', '.join(names)}"
        else:
            named = "a PodDisruptionBudget" if refusal.causes else "the API server"
        return f"{named}: {detail}" if detail else named

    async def _policy_version(self) -> str:
        """``policy/v1`` or ``policy/v1beta1``: what the server serves ``pods/eviction`` in."""
        if self._policy is None:
            discovery = await self._kube.send("GET", "/api/v1", what="API discovery", accept=(404,))
            self._policy = _DEFAULT_POLICY
            for resource in discovery.body.get("resources") or ():
                if resource.get("name") == "pods/eviction" and resource.get("version"):
                    group = resource.get("group") or "policy"
                    self._policy = f"{group}/{resource['version']}"
        return self._policy

    async def _wait_gone(self, node: str, pods: Sequence[PodRef], deadline: float) -> None:
        waiting = set(pods)
        while True:
            present = {_pod_ref(pod) for pod in await self._pods(node)}
            waiting &= present  # same uid: the same pod (a new one of that name is not)
            if not waiting:
                return
            if time.monotonic() + self._interval > deadline:
                left = sorted(waiting, key=str)
                raise BackendError(
                    f"cannot drain node {node}: pod(s) {_listing(left)} evicted but still "
                    f"terminating after {self._timeout:g} s (drain timeout)"
                )
            await asyncio.sleep(self._interval)
