"""``NETWEAVE_METRICS_PORT``: validated like a port, and a port that cannot be bound stops
start-up instead of leaving a gateway nobody can scrape.  (Serving on it is checked by the
catalogue test, which scrapes both ports.)"""

from __future__ import annotations

import socket

import httpx
import pytest
from pydantic import ValidationError
from tests.servers import free_port

from netweave.app import create_app
from netweave.config import Settings
from netweave.observability.metrics import Metrics


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_a_metrics_port_outside_1_to_65535_is_refused(port: int) -> None:
    with pytest.raises(ValidationError, match="metrics_port"):
        Settings(metrics_port=port)


@pytest.mark.parametrize("port", [1, 9090, 65535])
def test_a_metrics_port_inside_the_range_is_accepted(port: int) -> None:
    assert Settings(metrics_port=port).metrics_port == port


def test_unset_is_the_default() -> None:
    assert Settings().metrics_port is None


def test_the_metrics_server_serves_the_registry_until_stopped() -> None:
    metrics = Metrics(version="test", backend="simulated")
    port = free_port()
    stop = metrics.serve("127.0.0.1", port)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False, timeout=5)
        assert answer.status_code == 200
        assert 'netweave_build_info{backend="simulated"' in answer.text
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False, timeout=5)


async def test_a_metrics_port_in_use_fails_start_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(Settings(access_log=False, metrics_port=port))
        with pytest.raises(OSError, match="in use"):
            async with app.router.lifespan_context(app):
                pass
