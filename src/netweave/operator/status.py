"""The ``O2IMSGateway`` status: ``observedGeneration`` and three conditions.

==============  ======================================================================
``Degraded``    True when the last reconciliation failed: ``InvalidSpec`` (the spec cannot
                be deployed; the message names the field), ``ApplyFailed`` (the API server
                refused an object, or a kind is not served, e.g. cert-manager's); False
                with ``Reconciled`` once every object of the spec is applied.
``Progressing`` True (``RollingOut``) while the Deployment has not finished rolling out the
                applied spec (``kubectl rollout status``'s test); False
                (``RolloutComplete``) when it has, or ``Blocked`` while ``Degraded``.
``Ready``       True (``ReplicasAvailable``) when every desired replica is available; False
                with ``ReplicasUnavailable``, ``ScaledToZero`` or ``NoDeployment``.
==============  ======================================================================

``observedGeneration`` is the generation of the spec the last reconciliation handled (also
when it was refused), so a client can wait for its change to be taken into account, then
read the conditions. A condition's ``lastTransitionTime`` changes only with its status.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Condition", "merge_conditions", "rollout_conditions"]


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str

    def as_dict(self, generation: int, now: str) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": "True" if self.status else "False",
            "reason": self.reason,
            "message": self.message,
            "observedGeneration": generation,
            "lastTransitionTime": now,
        }


def rollout_conditions(deployment: Mapping[str, Any] | None, degraded: bool) -> list[Condition]:
    """``Progressing`` and ``Ready`` from the Deployment as last seen."""
    if deployment is None:
        return [
            Condition("Progressing", False, "Blocked", "no Deployment yet"),
            Condition("Ready", False, "NoDeployment", "no Deployment yet"),
        ]
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    generation = int((deployment.get("metadata") or {}).get("generation", 0))
    observed = int(status.get("observedGeneration", 0))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if degraded:
        progressing = Condition(
            "Progressing", False, "Blocked", "the spec is not applied (see Degraded)"
        )
    elif observed < generation:
        progressing = Condition(
            "Progressing", True, "RollingOut", "the Deployment has not seen its new spec yet"
        )
    elif updated < desired:
        progressing = Condition(
            "Progressing", True, "RollingOut", f"{updated} of {desired} replicas updated"
        )
    elif total > updated:
        progressing = Condition(
            "Progressing", True, "RollingOut", f"{total - updated} old replicas terminating"
        )
    elif available < updated:
        progressing = Condition(
            "Progressing", True, "RollingOut", f"{available} of {updated} replicas available"
        )
    else:
        progressing = Condition("Progressing", False, "RolloutComplete", "rolled out")
    if desired == 0:
        ready = Condition("Ready", False, "ScaledToZero", "spec.replicas is 0")
    elif available >= desired:
        ready = Condition("Ready", True, "ReplicasAvailable", f"{available} of {desired} available")
    else:
        ready = Condition(
            "Ready", False, "ReplicasUnavailable", f"{available} of {desired} replicas available"
        )
    return [progressing, ready]


def merge_conditions(
    current: Sequence[Mapping[str, Any]] | None,
    updates: Sequence[Condition],
    generation: int,
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """``current`` with ``updates`` applied: a condition keeps its ``lastTransitionTime``
    while its status stays the same; conditions not updated are kept as they are."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    merged = {str(c.get("type")): dict(c) for c in current or ()}
    for condition in updates:
        fresh = condition.as_dict(generation, stamp)
        previous = merged.get(condition.type)
        if previous is not None and previous.get("status") == fresh["status"]:
            fresh["lastTransitionTime"] = previous.get("lastTransitionTime", stamp)
        merged[condition.type] = fresh
    order = {"Ready": 0, "Progressing": 1, "Degraded": 2}
    return sorted(merged.values(), key=lambda c: (order.get(str(c["type"]), 3), str(c["type"])))
