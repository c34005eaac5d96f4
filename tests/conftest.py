from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import RunningGateway, serve_gateway


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's NETWEAVE_* settings or proxy variables."""
    for name in list(os.environ):
        if name.startswith("NETWEAVE_") or name.lower() in {
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        }:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def gateway() -> Iterator[RunningGateway]:
    """One gateway over the simulated O-Cloud with default settings, shared by the session."""
    with serve_gateway() as running:
        yield running


@pytest.fixture(scope="session")
def paged_gateway() -> Iterator[RunningGateway]:
    """A gateway with a page size of 2, to exercise paging."""
    with serve_gateway(max_page_size=2, paging_marker_ttl=60.0) as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=10.0, trust_env=False) as http:
        yield http


@pytest.fixture
def paged_client(paged_gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=paged_gateway.base_url, timeout=10.0, trust_env=False) as http:
        yield http
