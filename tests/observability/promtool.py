"""Running Prometheus' ``promtool``, from Debian's ``prometheus`` package.

``scripts/install-system-deps`` installs it; a missing binary is an error, never a skip, like a
missing ``redis-server``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def promtool(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is missing: run scripts/install-system-deps"
    return subprocess.run(
        [binary, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
