"""Real servers for the tests: the gateway under uvicorn on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from netweave.app import create_app
from netweave.config import Settings
from netweave.server import build_server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningGateway:
    settings: Settings
    server: uvicorn.Server

    @property
    def base_url(self) -> str:
        scheme = "https" if self.settings.tls_cert_file is not None else "http"
        return f"{scheme}://127.0.0.1:{self.settings.port}"

    @property
    def app(self):  # the FastAPI app, for white-box checks of its state
        return self.server.config.app


@contextlib.contextmanager
def serve_gateway(loop: str = "asyncio", **overrides: object) -> Iterator[RunningGateway]:
    """Run the gateway in a thread until the block ends; loopback only."""
    port = free_port()
    settings = Settings(host="127.0.0.1", port=port, **overrides)  # type: ignore[arg-type]
    server = build_server(create_app(settings), settings, loop=loop)
    thread = threading.Thread(target=server.run, name=f"gateway-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield RunningGateway(settings=settings, server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@dataclass
class GatewayProcess:
    """``netweave serve`` as its own process (replica tests kill it with SIGKILL)."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/readyz", trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway is not ready: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def gateway_processes(count: int, workdir: Path, **settings: str) -> Iterator[list[GatewayProcess]]:
    """``count`` gateway processes with the given NETWEAVE_* settings (names without the
    prefix, lower case), each on its own free loopback port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env.update({f"NETWEAVE_{name.upper()}": value for name, value in settings.items()})
    started: list[GatewayProcess] = []
    try:
        for index in range(count):
            port = free_port()
            log = workdir / f"gateway-{index}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "netweave", "serve"],
                    env={**env, "NETWEAVE_PORT": str(port), "NETWEAVE_REPLICA_ID": f"r{index}"},
                    stdout=sink,
                    stderr=sink,
                )
            started.append(GatewayProcess(process, port, log))
        for gateway in started:
            gateway.wait_ready()
        yield started
    finally:
        for gateway in started:
            gateway.stop()
