"""Backends by name, registered through the ``netweave.adapters`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from netweave.adapters.base import InfrastructureAdapter
from netweave.config import Settings

GROUP = "netweave.adapters"


def available_backends() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def build_adapter(settings: Settings) -> InfrastructureAdapter:
    """Construct the backend the settings select."""
    if settings.backend == "simulated":
        from netweave.adapters.simulated import SimulatedAdapter

        return SimulatedAdapter(
            ocloud_id=settings.effective_ocloud_id,
            churn_interval=settings.simulated_churn_interval,
            seed=settings.simulated_seed,
        )
    raise ValueError(f"unknown backend {settings.backend!r}; available: {available_backends()}")
