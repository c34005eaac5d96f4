"""The operator's requests to the API server: server-side apply, delete, status, discovery.

Kopf watches the ``O2IMSGateway`` objects and calls the handlers; the children are written
here, on plain JSON through lightkube's configured HTTP client (the same credentials
resolution as the gateway's Kubernetes backend: a kubeconfig, ``KUBECONFIG``,
``~/.kube/config`` or the pod's service account). Every object is applied server-side
(``PATCH`` with ``application/apply-patch+yaml``, JSON being YAML) under the field manager
``netweave-operator`` with ``force``: the operator owns the fields it sets, whoever changed
them since, and fields it stops setting are removed. A failed request raises
:class:`KubeError` with the server's status, reason and message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import httpx2 as httpx
import orjson

from netweave.operator.manifests import GROUP, MANAGER, PLURAL, VERSION, Manifest

__all__ = [
    "APPLY_PATCH",
    "KubeClient",
    "KubeError",
    "gateway_path",
    "load_config",
    "object_path",
]

APPLY_PATCH: Final = "application/apply-patch+yaml"
_MERGE_PATCH: Final = "application/merge-patch+json"
_MESSAGE_LIMIT: Final = 400

#: (apiVersion, kind) -> (plural, namespaced) of every kind the operator writes
_RESOURCES: Final[dict[tuple[str, str], tuple[str, bool]]] = {
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Service"): ("services", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("policy/v1beta1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("cert-manager.io/v1", "Certificate"): ("certificates", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    (f"{GROUP}/{VERSION}", "O2IMSGateway"): (PLURAL, True),
}


class KubeError(Exception):
    """The API server refused a request, or could not be reached (status 0)."""

    def __init__(self, status: int, reason: str, message: str, subject: str = "") -> None:
        text = f"{status} {reason}: {message}" if status else message
        super().__init__(f"{subject}: {text}" if subject else text)
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth retrying as is: no answer, a conflict, throttling, a server error."""
        return self.status in (0, 409, 429) or self.status >= 500


def object_path(api_version: str, kind: str, namespace: str | None, name: str | None) -> str:
    """The URL path of an object (``name`` None: its collection)."""
    try:
        plural, namespaced = _RESOURCES[(api_version, kind)]
    except KeyError:
        raise ValueError(f"the operator does not write {kind} {api_version}") from None
    root = "/api" if "/" not in api_version else "/apis"
    scope = f"/namespaces/{namespace}" if namespaced else ""
    return f"{root}/{api_version}{scope}/{plural}" + (f"/{name}" if name else "")


def gateway_path(namespace: str, name: str) -> str:
    return object_path(f"{GROUP}/{VERSION}", "O2IMSGateway", namespace, name)


class KubeClient:
    """JSON requests on an authenticated client of the API server."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._served: dict[str, frozenset[str]] = {}

    @classmethod
    def connect(cls, single: Any) -> KubeClient:
        """A client of the cluster of lightkube's ``SingleConfig`` (see :func:`load_config`)."""
        from lightkube.config import client_adapter

        params = client_adapter.ConnectionParams(timeout=httpx.Timeout(30.0), trust_env=False)
        return cls(client_adapter.AsyncClient(single, params))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def apply(self, obj: Manifest) -> Manifest:
        """Server-side apply ``obj`` (created if absent); the object as stored."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return await self._request(
            "PATCH",
            path,
            params={"fieldManager": MANAGER, "force": "true"},
            content=orjson.dumps(obj),
            headers={"Content-Type": APPLY_PATCH},
        )

    async def get(self, path: str) -> Manifest | None:
        """The object at ``path``, None if there is none."""
        try:
            return await self._request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def delete(self, path: str, uid: str) -> bool:
        """Delete the object at ``path`` if it is still the one with ``uid``; False if it
        is already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        try:
            await self._request("DELETE", path, content=orjson.dumps(body))
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def patch_status(
        self, namespace: str, name: str, status: Mapping[str, Any], resource_version: str
    ) -> Manifest:
        """Replace the status fields given, if the object is still at ``resource_version``
        (409 otherwise: the caller reads it again)."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        return await self._request(
            "PATCH",
            f"{gateway_path(namespace, name)}/status",
            content=orjson.dumps(body),
            headers={"Content-Type": _MERGE_PATCH},
        )

    async def serves(self, api_version: str, kind: str) -> bool:
        """Whether the server serves ``kind`` in ``api_version`` (discovery, remembered)."""
        if api_version not in self._served:
            root = "/api" if "/" not in api_version else "/apis"
            listing = await self.get(f"{root}/{api_version}")
            resources = (listing or {}).get("resources") or ()
            kinds = frozenset(r["kind"] for r in resources if "/" not in r["name"])
            if not kinds:
                return False  # not remembered: the group may be installed later
            self._served[api_version] = kinds
        return kind in self._served[api_version]

    async def _request(self, method: str, path: str, **kwargs: Any) -> Manifest:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise KubeError(0, "Unreachable", f"{method} {path}: {exc!r}") from None
        if response.is_success:
            body: Manifest = response.json()
            return body
        reason, message = str(response.status_code), response.text
        with contextlib.suppress(ValueError):  # not a Status object: keep the raw text
            status = response.json()
            reason, message = status.get("reason") or reason, status.get("message") or message
        raise KubeError(response.status_code, reason, " ".join(message.split())[:_MESSAGE_LIMIT])


def load_config(kubeconfig: Path | None, context: str | None) -> Any:
    """lightkube's configuration of one context (``SingleConfig``): from a kubeconfig
    file, else ``KUBECONFIG``, ``~/.kube/config`` or the pod's service account (lightkube's
    ``KubeConfig.from_env`` order)."""
    from lightkube.config.kubeconfig import KubeConfig

    config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
    single = config.get(context_name=context)
    if single is None:
        raise ValueError("the kubeconfig has no usable context")
    return single
