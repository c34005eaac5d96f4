"""The Kubernetes backend: a cluster's nodes, node pools and storage classes as O2-IMS inventory.

``mapping`` holds the pure functions that turn Kubernetes objects (JSON as the API server
returns them) into O2-IMS models; ``watching`` keeps them current; ``writes`` (with
``machinesets``, ``resourcepools``, ``drain``, ``pools`` and ``rest``) implements the pool
and resource lifecycle; ``alarms`` turns node conditions and Warning events into alarms.
"""

from netweave.adapters.kubernetes.adapter import KubernetesAdapter

__all__ = ["KubernetesAdapter"]
