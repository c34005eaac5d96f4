"""A real kube-apiserver (plus etcd) on loopback for the integration tests.

Thin wrapper around ``scripts/kube-apiserver.sh``: ``build_kube_apiserver()`` builds (or finds
the cached) binary, ``running_kube_apiserver(workdir)`` runs etcd and kube-apiserver with all
their state in ``workdir`` for the duration of a ``with`` block.
"""

from __future__ import annotations

import contextlib
import shlex
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "kube-apiserver.sh"

BUILD_TIMEOUT = 30 * 60.0
"""Seconds `build` may take: a cold build is several minutes, a cached one instant."""
START_TIMEOUT = 120.0
"""Seconds `start`, `start-apiserver` and `stop` may take (readiness is awaited 60 s at most)."""


class KubeAPIServerError(RuntimeError):
    """The script failed; the message carries its output."""


def _run_script(*args: str, timeout: float = START_TIMEOUT) -> str:
    command = [str(SCRIPT), *args]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise KubeAPIServerError(f"{shlex.join(command)} timed out after {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise KubeAPIServerError(
            f"{shlex.join(command)} failed with exit status {done.returncode}:\n"
            f"{done.stderr}{done.stdout}"
        )
    return done.stdout


def build_kube_apiserver(timeout: float = BUILD_TIMEOUT) -> Path:
    """Build kube-apiserver unless cached (a no-op then); returns the binary's path."""
    output = _run_script("build", timeout=timeout).strip().splitlines()
    if not output:
        raise KubeAPIServerError("scripts/kube-apiserver.sh build printed no binary path")
    return Path(output[-1])


def _read_env(path: Path) -> dict[str, str]:
    """The script's shell-sourceable env file (NAME=value lines, values quoted by printf %q)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, raw = line.partition("=")
        words = shlex.split(raw)
        values[name] = words[0] if words else ""
    return values


@dataclass(frozen=True)
class KubeAPIServer:
    """A running etcd + kube-apiserver whose state lives in ``workdir``."""

    workdir: Path
    url: str
    """``https://127.0.0.1:<port>``; stays the same across stop_apiserver/start_apiserver."""
    etcd_url: str
    kubeconfig: Path
    """Admin kubeconfig: user netweave-admin in group system:masters."""
    restricted_kubeconfig: Path
    """User netweave-restricted, no groups: RBAC forbids it everything but discovery."""
    ca_file: Path
    """The CA that signed the serving certificate (for 127.0.0.1 and localhost)."""
    admin_token: str
    restricted_token: str

    @classmethod
    def from_workdir(cls, workdir: Path) -> KubeAPIServer:
        env = _read_env(workdir / "env")
        return cls(
            workdir=workdir,
            url=env["APISERVER_URL"],
            etcd_url=env["ETCD_URL"],
            kubeconfig=Path(env["KUBECONFIG_ADMIN"]),
            restricted_kubeconfig=Path(env["KUBECONFIG_RESTRICTED"]),
            ca_file=Path(env["CA_FILE"]),
            admin_token=Path(env["ADMIN_TOKEN_FILE"]).read_text().strip(),
            restricted_token=Path(env["RESTRICTED_TOKEN_FILE"]).read_text().strip(),
        )

    @property
    def pids(self) -> dict[str, int | None]:
        """Current process ids (None when stopped), read from ``workdir/env``."""
        env = _read_env(self.workdir / "env")
        return {
            name: int(env[key]) if env.get(key) else None
            for name, key in (("kube-apiserver", "APISERVER_PID"), ("etcd", "ETCD_PID"))
        }

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the server against the generated CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        """An httpx client for the API server, as admin unless another token is given."""
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(
            base_url=self.url,
            headers=headers,
            verify=self.ssl_context(),
            trust_env=False,
            **kwargs,  # type: ignore[arg-type]
        )

    def stop_apiserver(self, *, kill: bool = False) -> None:
        """Stop only kube-apiserver and wait until it is gone; etcd keeps running (and the data).

        SIGTERM, then SIGKILL after 5 s: with watches open, kube-apiserver 1.20 would otherwise
        linger for up to 60 s, its listener closed but the watches still open. ``kill=True``
        sends SIGKILL at once, like a crash.
        """
        _run_script("stop-apiserver", *(["--kill"] if kill else []), str(self.workdir))

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port with the same etcd, certificates and
        tokens; returns once it is ready."""
        _run_script("start-apiserver", str(self.workdir))


@contextlib.contextmanager
def running_kube_apiserver(workdir: Path) -> Iterator[KubeAPIServer]:
    """Run etcd + kube-apiserver with their state in ``workdir`` until the block ends.

    The binary must be built already (``build_kube_apiserver()``); logs are in
    ``workdir/kube-apiserver.log`` and ``workdir/etcd.log``.
    """
    workdir = workdir.resolve()
    _run_script("start", str(workdir))
    try:
        yield KubeAPIServer.from_workdir(workdir)
    finally:
        _run_script("stop", str(workdir))


#: The cluster-api MachineSet CRD (v1beta1, with the scale subresource), for tests and
#: benchmarks that need the API a cluster-api management cluster serves.
MACHINESET_CRD_NAME = "machinesets.cluster.x-k8s.io"
MACHINESET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": MACHINESET_CRD_NAME},
    "spec": {
        "group": "cluster.x-k8s.io",
        "scope": "Namespaced",
        "names": {
            "kind": "MachineSet",
            "listKind": "MachineSetList",
            "plural": "machinesets",
            "singular": "machineset",
            "shortNames": ["ms"],
        },
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                                "properties": {"replicas": {"type": "integer", "format": "int32"}},
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                                "properties": {
                                    "replicas": {"type": "integer", "format": "int32"},
                                    "selector": {"type": "string"},
                                },
                            },
                        },
                    }
                },
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
            }
        ],
    },
}


#: netweave's ResourcePool CRD exactly as shipped (deploy/crds/), for tests of pools on a
#: cluster without cluster-api.
RESOURCEPOOL_CRD_NAME = "resourcepools.o2ims.oran.org"
RESOURCEPOOL_CRD_FILE = (
    Path(__file__).resolve().parent.parent / "deploy" / "crds" / f"{RESOURCEPOOL_CRD_NAME}.yaml"
)


def resourcepool_crd() -> dict[str, Any]:
    """The shipped ResourcePool CRD, parsed (a fresh copy: callers may add labels)."""
    crd: dict[str, Any] = yaml.safe_load(RESOURCEPOOL_CRD_FILE.read_text())
    return crd


#: The cluster-api Machine CRD (v1beta1), for tests that retire a machine-backed node.
MACHINE_CRD_NAME = "machines.cluster.x-k8s.io"
MACHINE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": MACHINE_CRD_NAME},
    "spec": {
        "group": "cluster.x-k8s.io",
        "scope": "Namespaced",
        "names": {
            "kind": "Machine",
            "listKind": "MachineList",
            "plural": "machines",
            "singular": "machine",
            "shortNames": ["ma"],
        },
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
                "subresources": {"status": {}},
            }
        ],
    },
}

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install_crd(http: httpx.Client, crd: dict[str, Any], timeout: float = 30.0) -> None:
    """Create ``crd`` and return once it is established and served (discovery included)."""
    response = http.post(CRDS, json=crd)
    if response.status_code not in (201, 409):
        raise KubeAPIServerError(f"cannot create CRD: {response.status_code} {response.text}")
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served"))
    group_version = f"/apis/{spec['group']}/{version}"
    deadline = time.monotonic() + timeout
    while True:
        got = http.get(f"{CRDS}/{crd['metadata']['name']}").json()
        conditions = {
            c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or ()
        }
        discovery = http.get(group_version)
        if (
            conditions.get("Established") == "True"
            and discovery.status_code == 200
            and spec["names"]["plural"] in {r["name"] for r in discovery.json()["resources"]}
            and http.get(f"{group_version}/{spec['names']['plural']}").status_code == 200
        ):
            return
        if time.monotonic() > deadline:
            raise KubeAPIServerError(f"CRD {crd['metadata']['name']} not served after {timeout} s")
        time.sleep(0.1)


def delete_crd(http: httpx.Client, name: str, timeout: float = 30.0) -> None:
    """Delete a CRD (if present) and wait until it is gone with all its objects."""
    response = http.delete(f"{CRDS}/{name}")
    if response.status_code not in (200, 404):
        raise KubeAPIServerError(
            f"cannot delete CRD {name}: {response.status_code} {response.text}"
        )
    deadline = time.monotonic() + timeout
    while http.get(f"{CRDS}/{name}").status_code != 404:  # its finalizer empties it first
        if time.monotonic() > deadline:
            raise KubeAPIServerError(f"CRD {name} not deleted after {timeout} s")
        time.sleep(0.1)
