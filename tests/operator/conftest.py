"""Fixtures of the operator tests: the shipped CRD on the session's real kube-apiserver, the
operator running in-process, and a namespace of the test's own.

``operator`` runs ``netweave.operator.run`` (kopf) in a thread with its own event loop, as
the admin, cluster-wide, for the whole module; ``namespace`` gives each test a fresh
namespace and removes what the test and the operator made there afterwards (the test API
server has no garbage collector and no namespace controller: the namespace itself stays,
empty).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from tests.integration.conftest import kube_admin, kube_api, kube_clean
from tests.kubeapi import KubeAPIServer, delete_crd, install_crd
from tests.operator.kube import (
    CRD_NAME,
    RunningOperator,
    crd,
    remove_gateways,
    running_operator,
)

__all__ = ["kube_admin", "kube_api", "kube_clean"]


@pytest.fixture(scope="module")
def gateway_crd(kube_api: KubeAPIServer) -> Iterator[None]:
    """The shipped O2IMSGateway CRD, installed for the module."""
    with kube_api.client(timeout=httpx.Timeout(10.0, read=30.0)) as http:
        install_crd(http, crd())
        yield
        delete_crd(http, CRD_NAME)


@pytest.fixture(scope="module")
def operator(kube_api: KubeAPIServer, gateway_crd: None) -> Iterator[RunningOperator]:
    """The operator as the admin, cluster-wide, for the module (retrying failed
    reconciliations after half a second, not 30, and resyncing every 2 s, not 5 min)."""
    with running_operator(kube_api.kubeconfig, retry_delay=0.5, resync_interval=2.0) as running:
        yield running


@pytest.fixture
def namespace(kube_admin: httpx.Client, gateway_crd: None) -> Iterator[str]:
    """A fresh namespace; the gateways and every object the operator made for them are
    removed after the test."""
    name = f"op-{uuid.uuid4().hex[:8]}"
    created = kube_admin.post(
        "/api/v1/namespaces",
        json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    assert created.status_code == 201, created.text
    yield name
    remove_gateways(kube_admin, name)
