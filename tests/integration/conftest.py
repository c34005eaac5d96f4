"""Fixtures of the integration tests: one real kube-apiserver for the whole session.

``kube_api`` builds kube-apiserver (a no-op when the binary is cached) and runs it, with etcd,
in a temporary directory until the session ends.  ``kube_clean`` gives a test that server
running and empty of what the tests create (Nodes, StorageClasses, MachineSets, the
MachineSet CRD, and ClusterRoles/Bindings labelled :data:`OWNED_LABEL`), before and after it,
so tests do not depend on each other.  ``kube_admin`` is an admin httpx client on top.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from tests.kubeapi import KubeAPIServer, build_kube_apiserver, running_kube_apiserver

#: label of the cluster-scoped objects a test creates and ``kube_clean`` deletes
OWNED_LABEL = "netweave.test/owned"
NODES = "/api/v1/nodes"
STORAGE_CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
MACHINESETS = "/apis/cluster.x-k8s.io/v1beta1/machinesets"
MACHINESET_CRD = (
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/machinesets.cluster.x-k8s.io"
)
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="session")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    """One etcd + kube-apiserver for the whole session (state in a temporary directory)."""
    build_kube_apiserver()  # a no-op when the binary is cached
    with running_kube_apiserver(tmp_path_factory.mktemp("kube-api")) as server:
        yield server


def clean_cluster(server: KubeAPIServer) -> None:
    """Start the API server if a test left it stopped; delete what the tests create."""
    if server.pids["kube-apiserver"] is None:
        server.start_apiserver()
    with server.client(timeout=httpx.Timeout(10.0, read=30.0)) as http:
        for path in (NODES, STORAGE_CLASSES):
            response = http.delete(path)  # deletecollection
            assert response.status_code == 200, response.text
        listing = http.get(MACHINESETS)
        if listing.status_code == 200:
            for item in listing.json()["items"]:
                meta = item["metadata"]
                http.delete(
                    f"/apis/cluster.x-k8s.io/v1beta1/namespaces/{meta['namespace']}"
                    f"/machinesets/{meta['name']}"
                )
        owned = {"labelSelector": OWNED_LABEL}
        for kind in ("clusterrolebindings", "clusterroles"):
            response = http.delete(f"{RBAC}/{kind}", params=owned)
            assert response.status_code == 200, response.text
        crd = http.delete(MACHINESET_CRD)
        assert crd.status_code in (200, 404), crd.text
        deadline = time.monotonic() + 30
        while http.get(MACHINESET_CRD).status_code != 404:  # its finalizer empties it first
            assert time.monotonic() < deadline, "the MachineSet CRD was not deleted"
            time.sleep(0.1)
        for path in (NODES, STORAGE_CLASSES):
            assert http.get(path).json()["items"] == [], f"{path} not empty after cleanup"


@pytest.fixture
def kube_clean(kube_api: KubeAPIServer) -> Iterator[KubeAPIServer]:
    """The session's API server, running and empty of test objects before and after the test."""
    clean_cluster(kube_api)
    yield kube_api
    clean_cluster(kube_api)


@pytest.fixture
def kube_admin(kube_clean: KubeAPIServer) -> Iterator[httpx.Client]:
    """An admin client of the (clean) session API server."""
    with kube_clean.client(timeout=httpx.Timeout(10.0, read=30.0)) as http:
        yield http
