"""Server-side dry runs of rendered manifests against the test kube-apiserver.

``Catalog`` reads the server's discovery (which kinds it serves, under which resource name,
namespaced or not); ``dry_run`` POSTs one object with ``?dryRun=All``: the server decodes,
defaults, admits and validates it exactly as a create, and stores nothing.
``missing_fields`` then lists what the server dropped from the object: Kubernetes 1.20
silently prunes fields it does not know (strict field validation came in 1.25), so a
misspelt field shows up only there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import yaml

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """Where the server serves one kind."""

    group_version: str
    name: str
    namespaced: bool

    def collection(self, namespace: str | None) -> str:
        root = "/api" if "/" not in self.group_version else "/apis"
        scope = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{root}/{self.group_version}{scope}/{self.name}"


class Catalog:
    """The kinds the API server serves, from its discovery documents."""

    def __init__(self, http: httpx.Client) -> None:
        versions = ["v1"]
        for group in http.get("/apis").raise_for_status().json()["groups"]:
            versions.extend(v["groupVersion"] for v in group["versions"])
        self._kinds: dict[tuple[str, str], Resource] = {}
        for group_version in versions:
            root = "/api" if "/" not in group_version else "/apis"
            listing = http.get(f"{root}/{group_version}").raise_for_status().json()
            for item in listing["resources"]:
                if "/" in item["name"]:  # a subresource
                    continue
                self._kinds[(group_version, item["kind"])] = Resource(
                    group_version, item["name"], item["namespaced"]
                )

    def serves(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self._kinds

    def resource(self, api_version: str, kind: str) -> Resource:
        try:
            return self._kinds[(api_version, kind)]
        except KeyError:
            raise AssertionError(f"the API server does not serve {kind} {api_version}") from None


def documents(text: str) -> list[Manifest]:
    """The objects of a multi-document YAML stream (empty documents skipped)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def dry_run(http: httpx.Client, catalog: Catalog, obj: Manifest, namespace: str) -> httpx.Response:
    """Create ``obj`` with ``dryRun=All``; namespaced objects go to their own namespace, or to
    ``namespace`` when they name none."""
    resource = catalog.resource(obj["apiVersion"], obj["kind"])
    where = obj.get("metadata", {}).get("namespace") or namespace
    return http.post(resource.collection(where), params={"dryRun": "All"}, json=obj)


def missing_fields(sent: Any, got: Any, path: str = "") -> list[str]:
    """The paths of ``sent`` that ``got`` lacks (values may differ: servers normalise and
    default them; lists are compared element by element when their lengths agree; an empty
    map or list the server omits is not lost)."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [path or "."]
        lost: list[str] = []
        for key, value in sent.items():
            here = f"{path}.{key}"
            if key not in got:
                if value not in ({}, [], None):  # empty: the server omits it, nothing lost
                    lost.append(here)
            else:
                lost.extend(missing_fields(value, got[key], here))
        return lost
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) != len(sent):
            return [path]
        return [
            lost
            for index, (one, other) in enumerate(zip(sent, got, strict=True))
            for lost in missing_fields(one, other, f"{path}[{index}]")
        ]
    return []


def accepted(http: httpx.Client, catalog: Catalog, objects: list[Manifest], namespace: str) -> None:
    """Assert the server accepts every object in a dry run and keeps every field of it."""
    assert objects, "nothing was rendered"
    for obj in objects:
        name = f"{obj['kind']} {obj['metadata']['name']} ({obj['apiVersion']})"
        answer = dry_run(http, catalog, obj, namespace)
        assert answer.status_code in (200, 201), f"{name}: {answer.status_code} {answer.text}"
        lost = missing_fields(obj, answer.json())
        assert not lost, f"{name}: the server dropped {lost}"
