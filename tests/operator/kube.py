"""Helpers of the operator tests: the shipped manifests, the operator in a thread, polling
the API server, and cleaning up after a test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from netweave.operator import OperatorConfig, run
from netweave.operator.manifests import MANAGER, OWNER_NAMESPACE_LABEL

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_DIR = ROOT / "deploy" / "operator"
CRD_NAME = "o2imsgateways.o2ims.oran.org"
API = "/apis/o2ims.oran.org/v1alpha1"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
#: the operator's own version (the image tag of a spec naming none) in these tests
OPERATOR_VERSION = "9.9.9"

Manifest = dict[str, Any]


def manifests(name: str) -> list[Manifest]:
    """The documents of ``deploy/operator/<name>``."""
    text = (OPERATOR_DIR / name).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def crd() -> Manifest:
    (only,) = manifests("crd.yaml")
    return only


@dataclass
class RunningOperator:
    thread: threading.Thread
    stop: threading.Event
    errors: list[BaseException]


@contextlib.contextmanager
def running_operator(kubeconfig: Path, **options: Any) -> Iterator[RunningOperator]:
    """``netweave.operator.run`` in a thread of its own until the block ends."""
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    config = OperatorConfig(version=OPERATOR_VERSION, kubeconfig=kubeconfig, **options)

    def main() -> None:
        try:
            asyncio.run(run(config, stop_flag=stop, ready_flag=ready))
        except BaseException as exc:
            errors.append(exc)
            raise

    thread = threading.Thread(target=main, name="netweave-operator", daemon=True)
    thread.start()
    try:
        assert ready.wait(30), f"the operator did not start: {errors}"
        yield RunningOperator(thread, stop, errors)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the operator did not stop"
    assert not errors, errors


def gateway_path(namespace: str, name: str = "") -> str:
    return f"{API}/namespaces/{namespace}/o2imsgateways" + (f"/{name}" if name else "")


def gateway(name: str, spec: Manifest) -> Manifest:
    return {
        "apiVersion": "o2ims.oran.org/v1alpha1",
        "kind": "O2IMSGateway",
        "metadata": {"name": name},
        "spec": spec,
    }


def create_gateway(http: httpx.Client, namespace: str, name: str, spec: Manifest) -> Manifest:
    created = http.post(gateway_path(namespace), json=gateway(name, spec))
    assert created.status_code == 201, created.text
    body: Manifest = created.json()
    return body


def patch_spec(http: httpx.Client, namespace: str, name: str, spec: Manifest) -> Manifest:
    patched = http.patch(
        gateway_path(namespace, name),
        json={"spec": spec},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    body: Manifest = patched.json()
    return body


def get(http: httpx.Client, path: str) -> Manifest | None:
    response = http.get(path)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: Manifest = response.json()
    return body


def conditions(body: Manifest) -> dict[str, Manifest]:
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or ()}


def wait_for(
    http: httpx.Client,
    path: str,
    check: Callable[[Manifest], bool],
    timeout: float = 20.0,
) -> Manifest:
    """The object at ``path`` once ``check`` holds for it; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Manifest | None = None
    while True:
        last = get(http, path)
        if last is not None and check(last):
            return last
        assert time.monotonic() < deadline, f"{path} never matched; last: {last}"
        time.sleep(0.05)


def reconciled(generation: int) -> Callable[[Manifest], bool]:
    """The gateway's status reports ``generation`` handled successfully."""

    def check(body: Manifest) -> bool:
        status = body.get("status") or {}
        degraded = conditions(body).get("Degraded", {})
        return bool(
            status.get("observedGeneration") == generation
            and degraded.get("status") == "False"
            and degraded.get("observedGeneration") == generation
        )

    return check


def wait_gone(http: httpx.Client, path: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while get(http, path) is not None:
        assert time.monotonic() < deadline, f"{path} still exists"
        time.sleep(0.05)


#: the namespaced kinds the operator makes: (collection path under the namespace, deletecollection)
CHILD_COLLECTIONS = (
    ("/apis/apps/v1", "deployments"),
    ("/api/v1", "configmaps"),
    ("/api/v1", "services"),
    ("/api/v1", "serviceaccounts"),
    ("/apis/policy/v1beta1", "poddisruptionbudgets"),
)


def remove_gateways(http: httpx.Client, namespace: str) -> None:
    """Delete the gateways of ``namespace`` (their finalizers dropped if no operator is
    there to handle them), the objects made for them, and their cluster-scoped objects."""
    listing = http.get(gateway_path(namespace))
    for item in listing.json().get("items", []) if listing.status_code == 200 else ():
        path = gateway_path(namespace, item["metadata"]["name"])
        http.delete(path)
        deadline = time.monotonic() + 5
        while get(http, path) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if get(http, path) is not None:
            http.patch(
                path,
                json={"metadata": {"finalizers": None}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            wait_gone(http, path)
    managed = {"labelSelector": f"app.kubernetes.io/managed-by={MANAGER}"}
    for root, plural in CHILD_COLLECTIONS:
        collection = f"{root}/namespaces/{namespace}/{plural}"
        for item in http.get(collection, params=managed).json().get("items", []):
            http.delete(f"{collection}/{item['metadata']['name']}")
    owned = {"labelSelector": f"{OWNER_NAMESPACE_LABEL}={namespace}"}
    for plural in ("clusterrolebindings", "clusterroles"):
        assert http.delete(f"{RBAC}/{plural}", params=owned).status_code == 200
