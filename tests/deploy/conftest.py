"""Fixtures of the deployment tests: the real test kube-apiserver (Kubernetes 1.20), ready to
dry-run what the Helm chart and the kustomize overlays render.

The API server fixtures are those of the integration tests. ``cluster`` adds what a dry run
of netweave's objects needs there: the target namespace (the NamespaceLifecycle admission
refuses objects of a namespace that does not exist; it is left in place, as nothing on the
test server could finish deleting it) and the CRDs of the Prometheus Operator and
cert-manager kinds, removed again at the end of the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.deploy.crds import CRDS
from tests.deploy.kube import Catalog
from tests.integration.conftest import kube_admin, kube_api, kube_clean
from tests.kubeapi import KubeAPIServer, delete_crd, install_crd

__all__ = ["Cluster", "kube_admin", "kube_api", "kube_clean"]

#: the namespace the chart and the overlays are rendered for
NAMESPACE = "netweave"


@dataclass(frozen=True)
class Cluster:
    """An admin client of the test API server and the kinds it serves."""

    server: KubeAPIServer
    http: httpx.Client
    catalog: Catalog


@pytest.fixture(scope="module")
def _third_party_crds(kube_api: KubeAPIServer) -> Iterator[None]:
    with kube_api.client(timeout=httpx.Timeout(10.0, read=30.0)) as http:
        for crd in CRDS:
            install_crd(http, crd)
        yield
        for crd in CRDS:
            delete_crd(http, crd["metadata"]["name"])


@pytest.fixture
def cluster(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client, _third_party_crds: None
) -> Cluster:
    """The clean test API server, with the namespace and the third-party CRDs in place."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    created = kube_admin.post("/api/v1/namespaces", json=namespace)
    assert created.status_code in (201, 409), created.text
    return Cluster(kube_clean, kube_admin, Catalog(kube_admin))
