"""The README's operator example, run as written against a kube-apiserver of its own.

The block between ``<!-- operator:begin -->`` and ``<!-- operator:end -->`` runs in one bash
with a kubeconfig for the server, ``kubectl`` and the venv's ``netweave`` on the PATH: it
applies the CRD and the RBAC, starts ``netweave operator`` in the background, applies the
example and waits for the operator to report it reconciled. Its own server, because the
example's namespaces are the ones the deployment tests use on the session's server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.deploy.rendering import kubectl
from tests.kubeapi import KubeAPIServer, build_kube_apiserver, running_kube_apiserver
from tests.operator.kube import ROOT, conditions, gateway_path, get

_BEGIN, _END = "<!-- operator:begin -->", "<!-- operator:end -->"


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split(_BEGIN, 1)[1].split(_END, 1)[0]
    return block.split("```sh", 1)[1].rsplit("```", 1)[0].strip("\n")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KubeAPIServer]:
    """A kube-apiserver of the test's own."""
    build_kube_apiserver()  # a no-op when the binary is cached
    with running_kube_apiserver(tmp_path / "kube") as running:
        yield running


def test_the_readme_operator_example_works_as_written(server: KubeAPIServer) -> None:
    block = readme_block()
    assert "netweave operator &" in block
    path = os.pathsep.join([str(Path(sys.executable).parent), str(Path(kubectl()).parent)])
    env = {
        "PATH": f"{path}{os.pathsep}/usr/bin:/bin",
        "HOME": str(server.workdir),
        "KUBECONFIG": str(server.kubeconfig),
    }
    # the operator started in the background stops with the script
    script = f"set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n{block}\n"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "o2imsgateway.o2ims.oran.org/netweave condition met" in done.stdout
    for shown in (
        "o2imsgateway.o2ims.oran.org/netweave",
        "deployment.apps/netweave",
        "service/netweave",
        "poddisruptionbudget.policy/netweave",
    ):
        assert shown in done.stdout, done.stdout

    with server.client() as http:
        body = get(http, gateway_path("netweave", "netweave"))
        assert body is not None
        found = conditions(body)
        assert found["Degraded"]["reason"] == "Reconciled"
        assert body["status"]["image"] == "registry.example.net/o2/netweave:0.1.0"
        deployment = get(http, "/apis/apps/v1/namespaces/netweave/deployments/netweave")
        assert deployment is not None
        assert deployment["spec"]["replicas"] == 3
