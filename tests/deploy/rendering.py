"""Rendering the deployment manifests as their users do: Helm (through helm-python-sdk, which
bundles Helm's own Go library) and ``kubectl kustomize``.

``render_chart_for`` renders like ``helm install --dry-run=server``: Helm asks the API server
for its version and the group/version/kinds it serves, so the chart's
``.Capabilities.APIVersions`` switches see exactly what that server (the 1.20 test server)
serves, and nothing is installed. ``render_chart_offline`` is ``helm template``: Helm's
built-in capabilities, no cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from tests.deploy.kube import Manifest, documents
from tests.kubeapi import KubeAPIServer

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "netweave"
KUSTOMIZE = ROOT / "deploy" / "kustomize"
RELEASE = "netweave"


def chart_values(name: str) -> dict[str, Any]:
    """A values file of the chart, e.g. ``values-production.yaml``."""
    values: dict[str, Any] = yaml.safe_load((CHART / name).read_text())
    return values


def render_chart_for(
    server: KubeAPIServer, values: dict[str, Any] | None, namespace: str
) -> list[Manifest]:
    """The objects ``helm install --dry-run=server`` would create on ``server``."""
    with helm.Config(kubeconfig_path=server.kubeconfig, namespace=namespace) as config:
        release = config.install(str(CHART), RELEASE, values, namespace=namespace, dry_run="server")
    manifest: str = release["manifest"]
    return documents(manifest)


def render_chart_offline(values: dict[str, Any] | None, namespace: str) -> list[Manifest]:
    """The objects ``helm template`` renders (no cluster; NOTES.txt left out)."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=namespace)
    return [
        obj
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for obj in documents(text)
    ]


def chart_crds() -> list[Manifest]:
    """The CRDs of the chart's crds/ directory (Helm installs them before the templates)."""
    with helm.Chart.load(CHART) as chart:
        return [obj for crd in chart.crds for obj in documents(crd["data"])]


def kubectl() -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        raise RuntimeError(
            "kubectl is not installed; `make test` installs it (scripts/install-system-deps)"
        )
    return binary


def kustomize(directory: Path) -> list[Manifest]:
    """``kubectl kustomize DIRECTORY``, parsed."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return documents(done.stdout)
