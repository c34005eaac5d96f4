"""``netweave operator`` refuses, in one line and with exit status 2, what it cannot start
with (its working run is the README example's, tests/operator/test_readme_operator.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NETWEAVE = str(Path(sys.executable).parent / "netweave")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--kubeconfig", "/nonexistent/kubeconfig"], "/nonexistent/kubeconfig not found"),
        (["--log-format", "xml"], "--log-format: json or plain"),
    ],
)
def test_the_operator_command_refuses_what_it_cannot_start_with(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [NETWEAVE, "operator", *arguments],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("netweave: ")
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
