"""A real ``redis-server`` for the tests, on a free loopback port, with its data in a directory.

``running_redis(tmpdir)`` yields a URL: ``REDIS_URL`` when it is set (no server is started),
else that of a server started for the block.  Tests that kill and restart Redis use
``redis_server(tmpdir)``, which always starts its own and yields a :class:`RedisServer`
with :meth:`~RedisServer.kill` (SIGKILL) and :meth:`~RedisServer.restart` (same port, same
directory).  The server runs with ``appendonly yes`` and no RDB snapshots, so what it
acknowledged survives a SIGKILL.  A missing ``redis-server`` binary is an error, never a
skip: ``make test`` installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServerError(RuntimeError):
    pass


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerError(
            "redis-server is not installed; `make test` installs it "
            "(scripts/install-system-deps), or set REDIS_URL to use a running Redis"
        )
    return binary


class RedisServer:
    """One ``redis-server`` process, restartable on the same port and directory."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = workdir.resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    def start(self) -> None:
        if self.process is not None:
            raise RedisServerError("redis-server is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--dir", str(self.workdir),
            "--logfile", str(self.log),
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self._wait_for_ping()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync; only what is in the append-only file stays."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Start again (after :meth:`kill` or :meth:`stop`) on the same port and directory."""
        self.stop()
        self.start()

    def _wait_for_ping(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        try:
            while True:
                if self.process.poll() is not None:
                    self.process = None
                    raise RedisServerError(f"redis-server exited at start:\n{self._log_tail()}")
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise RedisServerError(f"redis-server did not answer PING:\n{self._log_tail()}")
                time.sleep(0.02)
        finally:
            client.close()

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of our own with its data in ``workdir``, until the block ends."""
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_redis(workdir: Path) -> Iterator[str]:
    """The URL of a Redis for the block: ``REDIS_URL`` if set, else a server of our own."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with redis_server(workdir) as server:
        yield server.url


@contextlib.contextmanager
def redis_sentinel(workdir: Path, *, master_port: int, master: str = "mymaster") -> Iterator[int]:
    """A Redis Sentinel monitoring the master on ``master_port``; yields the sentinel's port."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\nlogfile {workdir / 'sentinel.log'}\n"
        f"sentinel monitor {master} 127.0.0.1 {master_port} 1\n"
    )
    process = subprocess.Popen(
        [redis_server_binary(), str(config), "--sentinel"], stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0) as client:
            while True:
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.sentinel_get_master_addr_by_name(master):
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RedisServerError("redis-server --sentinel did not start")
                time.sleep(0.02)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
