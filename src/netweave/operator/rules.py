"""The rules of the gateway's ClusterRole, as ``deploy/rbac/clusterrole.yaml`` states them.

The operator runs from the installed package, where ``deploy/`` is not, so it carries a copy;
``tests/operator`` checks the copy equals the file (as ``tests/deploy`` does for the kustomize
base), and that the operator's own ClusterRole holds every one of these permissions: RBAC lets
it create and bind a role only with the permissions it holds itself (no ``escalate`` or
``bind``).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["GATEWAY_RULES"]

_READ: Final = ["get", "list", "watch"]
_WRITE: Final = ["create", "get", "list", "watch", "patch", "update", "delete"]

GATEWAY_RULES: Final[list[dict[str, Any]]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": [*_READ, "patch", "delete"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["events"], "verbs": _READ},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": _READ},
    {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["get", "list"]},
    {"apiGroups": ["cluster.x-k8s.io"], "resources": ["machinesets"], "verbs": _WRITE},
    {
        "apiGroups": ["cluster.x-k8s.io"],
        "resources": ["machinesets/scale"],
        "verbs": ["get", "patch", "update"],
    },
    {
        "apiGroups": ["cluster.x-k8s.io"],
        "resources": ["machines"],
        "verbs": ["get", "patch", "delete"],
    },
    {"apiGroups": ["o2ims.oran.org"], "resources": ["resourcepools"], "verbs": _WRITE},
]
