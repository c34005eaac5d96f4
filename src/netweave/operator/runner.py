"""Kopf's side: the handlers, the login, the settings, and :func:`run`.

The operator runs standalone (no kopf peering objects): deploy one replica
(``deploy/operator/deployment.yaml`` uses the ``Recreate`` strategy, so two never overlap).
It watches ``O2IMSGateway`` objects cluster-wide, or in the namespaces given, and the
Deployments it manages (label ``app.kubernetes.io/managed-by=netweave-operator``), whose
rollout it reports on the owning gateway's status. Kopf keeps its bookkeeping in annotations
under ``operator.o2ims.oran.org/`` and its finalizer is ``o2ims.oran.org/operator``, so the
status holds only what :mod:`.status` describes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import kopf

from netweave.operator.kube import KubeClient, load_config
from netweave.operator.manifests import GROUP, MANAGER, PLURAL, VERSION
from netweave.operator.reconcile import Reconciler

__all__ = ["OperatorConfig", "build_registry", "connection_info", "operator_settings", "run"]

FINALIZER: Final = f"{GROUP}/operator"
_ANNOTATIONS: Final = f"operator.{GROUP}"


@dataclass(frozen=True)
class OperatorConfig:
    """How ``netweave operator`` runs."""

    #: the image tag of a gateway whose spec names no version
    version: str
    kubeconfig: Path | None = None
    context: str | None = None
    #: watch only these namespaces (none: the whole cluster)
    namespaces: Sequence[str] = field(default_factory=tuple)
    #: seconds between two reconciliations of an unchanged gateway (drift correction)
    resync_interval: float = 300.0
    #: seconds before a reconciliation that failed for a transient reason runs again
    retry_delay: float = 30.0
    #: e.g. ``http://0.0.0.0:8081/healthz``: kopf's liveness endpoint
    liveness_endpoint: str | None = None


def connection_info(single: Any) -> kopf.ConnectionInfo:
    """Kopf's credentials from lightkube's configuration of one context, so kopf's watches
    and the operator's writes authenticate the same way. The token file, if any, is read
    again at every login (kopf logs in again on a 401: rotated tokens are picked up)."""
    cluster, user = single.cluster, single.user
    if user is not None and (user.exec or user.auth_provider):
        raise kopf.LoginError(
            "exec and auth-provider credentials are not supported: use a token, a client "
            "certificate or the in-cluster service account"
        )
    token = user.token if user is not None else None
    if user is not None and user.token_file:
        token = Path(single.abs_file(user.token_file)).read_text(encoding="utf-8").strip()

    def path(name: str | None) -> str | None:
        return str(single.abs_file(name)) if name else None

    return kopf.ConnectionInfo(
        server=cluster.server,
        ca_path=path(cluster.certificate_auth),
        ca_data=cluster.certificate_auth_data,
        insecure=cluster.insecure or None,
        token=token or None,
        username=user.username if user is not None else None,
        password=user.password if user is not None else None,
        certificate_path=path(user.client_cert) if user is not None else None,
        certificate_data=user.client_cert_data if user is not None else None,
        private_key_path=path(user.client_key) if user is not None else None,
        private_key_data=user.client_key_data if user is not None else None,
        default_namespace=single.context.namespace,
    )


def build_registry(
    reconciler: Reconciler, single: Any, *, resync_interval: float
) -> kopf.OperatorRegistry:
    """The operator's handlers, in a registry of their own (not kopf's global one)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(id="login", registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(single)

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    async def reconcile(body: kopf.Body, **_: Any) -> None:
        await reconciler.reconcile(body)

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=resync_interval,
        initial_delay=resync_interval,
        errors=kopf.ErrorsMode.IGNORED,
        id="resync",
        registry=registry,
    )
    async def resync(body: kopf.Body, **_: Any) -> None:
        await reconciler.reconcile(body)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="delete", registry=registry)
    async def delete(body: kopf.Body, **_: Any) -> None:
        await reconciler.delete(body)

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        labels={"app.kubernetes.io/managed-by": MANAGER},
        id="deployment",
        registry=registry,
    )
    async def deployment(body: kopf.Body, type: str | None, **_: Any) -> None:
        if type != "DELETED":
            await reconciler.deployment_changed(body)

    return registry


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.reporting_component = MANAGER
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=_ANNOTATIONS)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=_ANNOTATIONS, key="last-handled-configuration"
    )
    # standalone: no peering objects to look for
    settings.peering.standalone = True
    return settings


async def run(
    config: OperatorConfig,
    *,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or SIGINT/SIGTERM in the main thread)."""
    single = load_config(config.kubeconfig, config.context)
    kube = KubeClient.connect(single)
    reconciler = Reconciler(kube, version=config.version, retry_delay=config.retry_delay)
    registry = build_registry(reconciler, single, resync_interval=config.resync_interval)
    logging.getLogger("netweave.operator").info(
        "netweave operator starting: %s",
        ", ".join(config.namespaces) if config.namespaces else "all namespaces",
    )
    try:
        await kopf.operator(
            registry=registry,
            settings=operator_settings(),
            standalone=True,
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            liveness_endpoint=config.liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await kube.aclose()
