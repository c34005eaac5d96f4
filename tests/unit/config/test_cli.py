"""The ``netweave`` command, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.servers import free_port

NETWEAVE = [sys.executable, "-m", "netweave"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env.update(extra)
    return env


def test_version() -> None:
    out = subprocess.run([*NETWEAVE, "version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("netweave ")


def test_check_config_ok_masks_secrets() -> None:
    out = subprocess.run(
        [*NETWEAVE, "check-config"],
        capture_output=True,
        text=True,
        env=_env(NETWEAVE_PAGING_SECRET="hunter2-secret"),
        check=True,
    )
    assert "configuration OK" in out.stdout
    assert "hunter2-secret" not in out.stdout + out.stderr


def test_check_config_bad_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [*NETWEAVE, "check-config"],
        capture_output=True,
        text=True,
        env=_env(NETWEAVE_MAX_PAGE_SIZE="-3"),
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "NETWEAVE_MAX_PAGE_SIZE" in lines[0]


def test_serve_with_a_bad_config_does_not_start() -> None:
    out = subprocess.run(
        [*NETWEAVE, "serve"],
        capture_output=True,
        text=True,
        env=_env(NETWEAVE_PORT="x"),
        timeout=60,
    )
    assert out.returncode == 2
    assert "NETWEAVE_PORT" in out.stderr


def test_serve_answers_and_logs_json_with_request_ids(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "netweave.yaml"
    config.write_text(f"port: {port}\nocloud_name: cli-test\n")
    log = tmp_path / "log.txt"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*NETWEAVE, "serve", "--config", str(config)], stderr=sink, stdout=sink, env=_env()
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    response = httpx.get(
                        f"http://127.0.0.1:{port}/o2ims-infrastructureInventory/v1",
                        trust_env=False,
                    )
                    break
                except httpx.TransportError:
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "serve did not come up"
                    time.sleep(0.1)
            assert response.status_code == 200
            assert response.json()["name"] == "cli-test"
            request_id = response.headers["x-request-id"]
        finally:
            process.terminate()
            process.wait(timeout=20)
    import json

    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(
        r.get("event") == "netweave starting" and r.get("backend") == "simulated" for r in records
    )
    access = [r for r in records if r.get("event") == "request"]
    assert any(r.get("request_id") == request_id and r.get("status") == 200 for r in access)
