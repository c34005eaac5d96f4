"""The built-in simulated O-Cloud backend (demos and SMO integration testing).

It serves a deterministic, believable O-Cloud (three sites, seven resource pools, 29
nodes, server, part and storage resource types, one Kubernetes deployment manager)
and, optionally, churns it so that subscriptions receive inventory events.  It also takes
the gateway's writes (resource pools created, resized and deleted, nodes added and
retired), published through ``watch()`` like churn.  Its nodes raise alarms
(``alarm_signals()``): churn takes nodes down, adds pressure conditions and reports
Warning events, and ``set_condition()`` raises or clears one on demand.
"""

from __future__ import annotations

from netweave.adapters.simulated.adapter import SimulatedAdapter

__all__ = ["SimulatedAdapter"]
