"""Backends by name, registered through the ``netweave.adapters`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from netweave.adapters.base import InfrastructureAdapter
from netweave.config import ConfigError, Settings

GROUP = "netweave.adapters"


def available_backends() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def build_adapter(settings: Settings) -> InfrastructureAdapter:
    """Construct the backend the settings select.

    Raises :class:`ConfigError` (one line) when the backend's own configuration, such as
    the kubeconfig, is unusable.
    """
    if settings.backend == "simulated":
        from netweave.adapters.simulated import SimulatedAdapter

        return SimulatedAdapter(
            ocloud_id=settings.effective_ocloud_id,
            churn_interval=settings.simulated_churn_interval,
            seed=settings.simulated_seed,
            pool_owners=settings.simulated_pool_owners,
        )
    if settings.backend == "kubernetes":
        from lightkube.core.exceptions import ConfigError as KubeConfigError

        from netweave.adapters.kubernetes import KubernetesAdapter

        try:
            return KubernetesAdapter.from_kubeconfig(
                ocloud_id=settings.effective_ocloud_id,
                kubeconfig=settings.kubeconfig,
                context=settings.kube_context,
                cluster_name=settings.cluster_name,
                pool_label=settings.pool_label,
                global_location_id=settings.global_location_id,
                location=settings.location,
                tenant_label=settings.tenant_label,
                shared_label=settings.shared_label,
                machineset_template=settings.machineset_template,
                drain_timeout=settings.drain_timeout,
                drain_grace_period=settings.drain_grace_period,
            )
        except (KubeConfigError, ValueError, OSError) as exc:
            raise ConfigError(
                f"invalid configuration: NETWEAVE_KUBECONFIG (kubeconfig): {exc}".splitlines()[0]
            ) from None
    raise ConfigError(f"unknown backend {settings.backend!r}; available: {available_backends()}")
