"""Failure behaviour over real HTTP: internal errors and a backend that never syncs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

import httpx
from tests.api.spec_shapes import assert_shape
from tests.servers import serve_gateway

from netweave.adapters.base import Capability, WatchItem
from netweave.models.inventory import InventoryModel, ObjectKind

V1 = "/o2ims-infrastructureInventory/v1"


class _Exploding:
    """Stands in for the inventory service and fails with a secret in the message."""

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise RuntimeError("secret-internal-detail at /srv/netweave/db.py:42")

        return fail


def test_unexpected_errors_are_a_generic_500_without_internals() -> None:
    with serve_gateway(access_log=False) as gateway:
        gateway.app.state.inventory = _Exploding()
        with httpx.Client(base_url=gateway.base_url, trust_env=False) as client:
            response = client.get(f"{V1}/resourcePools")
            assert response.status_code == 500
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert_shape("ProblemDetails", body)
            assert "secret" not in response.text
            assert "Traceback" not in response.text
            assert response.headers["x-request-id"] in body["detail"]
            # the process keeps serving
            assert client.get("/healthz").status_code == 200


class _NeverSyncs:
    name: ClassVar[str] = "never"

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset()

    async def list_objects(self, kind: ObjectKind) -> Sequence[InventoryModel]:
        return []

    async def get_object(self, kind: ObjectKind, object_id: str) -> InventoryModel | None:
        return None

    async def watch(self) -> AsyncIterator[WatchItem]:
        await asyncio.Event().wait()
        yield  # pragma: no cover - never reached

    async def aclose(self) -> None:
        return None


def test_a_cold_view_answers_503_with_retry_after_and_readyz_says_why(monkeypatch) -> None:
    monkeypatch.setattr("netweave.app.build_adapter", lambda _settings: _NeverSyncs())
    monkeypatch.setattr("netweave.app._FIRST_SYNC_WAIT", 0.01)
    with serve_gateway(access_log=False) as gateway:
        with httpx.Client(base_url=gateway.base_url, trust_env=False) as client:
            response = client.get(f"{V1}/resourcePools")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "5"
            assert "synchronised" in response.json()["detail"]
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "not ready"
            assert ready.json()["reason"]
            assert client.get("/healthz").status_code == 200
            # the O-Cloud itself comes from configuration and is always there
            assert client.get(V1).status_code == 200
