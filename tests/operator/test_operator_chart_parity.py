"""The operator makes the Helm chart's objects: for each spec, ``manifests.build`` equals the
chart rendered by Helm's own library (helm-python-sdk, offline ``helm template``) with the
values that spec stands for, object for object and field for field, apart from the
documented differences (labels, owner references, the cluster-scoped names, checksums)."""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import pytest
import yaml
from tests.operator.kube import ROOT

from netweave.operator.manifests import Owner, build, fullname
from netweave.operator.spec import GatewaySpec, check

CHART = ROOT / "deploy" / "helm" / "netweave"
NAMESPACE = "o2"
VERSION = "0.1.0"

SPECS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "production": {
        "replicas": 5,
        "version": "2.0.0",
        "image": {"repository": "registry.example.net/o2/netweave", "pullSecrets": ["regcred"]},
        "tls": {
            "issuerRef": {"name": "o2-ca"},
            "dnsNames": ["o2ims.example.net"],
        },
        "mtls": {"clientCASecret": "smo-client-ca", "clientCertMode": "required"},
        "redis": {
            "mode": "sentinel",
            "sentinel": {
                "hosts": ["redis-0.redis:26379", "redis-1.redis:26379"],
                "master": "primary",
                "db": 2,
                "tls": True,
                "passwordSecret": {"name": "redis-auth"},
                "authenticateSentinels": True,
            },
        },
        "backend": {"clusterName": "mad-edge-1", "poolLabel": "example.net/pool"},
        "tenancy": {
            "inline": {
                "tenants": [{"tenantId": "smo-a", "name": "SMO A"}],
                "roleBindings": [{"subject": "CN=noc", "role": "platform-admin"}],
            }
        },
        "notifications": {"signingSecret": {"name": "signing"}},
        "config": {
            "service_uri": "https://o2ims.example.net:8080",
            "default_rate_limit": 200.0,
            "token_role_map": {"o2-admin": "platform-admin"},
            "access_log": False,
        },
    },
    "lab": {
        "replicas": 1,
        "image": {"digest": "sha256:" + "ab" * 32},
        "tls": {"enabled": False},
        "mtls": {"enabled": False},
        "redis": {"mode": "none"},
        "backend": {"type": "simulated"},
        "paging": {"secretName": None},
        "config": {"insecure": True},
    },
    "own tenancy and TLS secret": {
        "tls": {"secretName": "gateway-tls"},
        "tenancy": {"configMapName": "tenancy"},
        "redis": {"urlSecret": {"name": "redis", "key": "uri"}},
        "paging": {"secretName": "paging", "key": "key"},
    },
}


def chart_values(spec: GatewaySpec) -> dict[str, Any]:
    """The chart's values an ``O2IMSGateway`` spec stands for (docs/deployment.md)."""
    tls, sentinel = spec.tls, spec.redis.sentinel
    issuer = tls.issuer_ref
    return {
        "replicaCount": spec.replicas,
        "image": {
            "repository": spec.image.repository,
            "tag": spec.version or VERSION,
            "digest": spec.image.digest or "",
            "pullPolicy": spec.image.pull_policy,
        },
        "imagePullSecrets": [{"name": name} for name in spec.image.pull_secrets],
        "config": spec.settings(),
        "tls": {
            "enabled": tls.enabled,
            "source": "certManager" if issuer else "secret",
            "existingSecret": tls.secret_name or "netweave-tls",
            "certManager": {
                "issuerRef": issuer.model_dump() if issuer else {"name": ""},
                "dnsNames": tls.dns_names,
            },
        },
        "mtls": {
            "enabled": spec.mtls.enabled,
            "clientCertMode": spec.mtls.client_cert_mode,
            "clientCA": {
                "existingSecret": spec.mtls.client_ca_secret,
                "key": spec.mtls.client_ca_key,
            },
        },
        "tenancy": {
            "existingConfigMap": spec.tenancy.config_map_name or "",
            "file": spec.tenancy.inline or {},
        },
        "paging": {"existingSecret": spec.paging.secret_name or "", "key": spec.paging.key},
        "notifications": {
            "signingSecret": {
                "existingSecret": spec.notifications.signing_secret.name
                if spec.notifications.signing_secret
                else "",
                "key": spec.notifications.signing_secret.key
                if spec.notifications.signing_secret
                else "secret",
            }
        },
        "redis": {
            "mode": spec.redis.mode,
            "url": {"existingSecret": spec.redis.url_secret.name, "key": spec.redis.url_secret.key},
            "sentinel": {
                "hosts": sentinel.hosts,
                "master": sentinel.master,
                "db": sentinel.db,
                "tls": sentinel.tls,
                "passwordSecret": {
                    "name": sentinel.password_secret.name if sentinel.password_secret else "",
                    "key": sentinel.password_secret.key if sentinel.password_secret else "password",
                },
                "authenticateSentinels": sentinel.authenticate_sentinels,
            },
        },
    }


def _normalise(obj: dict[str, Any], cluster_name: str) -> dict[str, Any]:
    """What the chart and the operator may differ in, taken out (module docstring)."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    meta.pop("ownerReferences", None)
    if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        meta["name"] = cluster_name
    if obj["kind"] == "ClusterRoleBinding":
        obj["roleRef"]["name"] = cluster_name
    labels = [meta.get("labels") or {}]
    if obj["kind"] == "Deployment":
        template = obj["spec"]["template"]["metadata"]
        labels.append(template["labels"])
        template["annotations"] = sorted(template["annotations"])  # their keys
    for found in labels:
        for key in list(found):
            if key.startswith(("helm.sh/", "o2ims.oran.org/")) or key in (
                "app.kubernetes.io/managed-by",
                "app.kubernetes.io/version",
            ):
                del found[key]
    if obj["kind"] == "ConfigMap" and "tenancy.yaml" in obj.get("data", {}):
        obj["data"]["tenancy.yaml"] = yaml.safe_load(obj["data"]["tenancy.yaml"])
    return obj


def _by_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


@pytest.mark.parametrize("name", ["netweave", "edge"])
@pytest.mark.parametrize("case", list(SPECS))
def test_the_operator_builds_what_the_chart_renders(case: str, name: str) -> None:
    spec = GatewaySpec.parse(SPECS[case])
    check(spec)
    owner = Owner(name=name, namespace=NAMESPACE, uid="00000000-0000-0000-0000-000000000001")
    children = build(owner, spec, version=VERSION, pdb_api_version="policy/v1")
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(chart_values(spec), name=name, namespace=NAMESPACE)
    expected = [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    cluster_name = fullname(name)
    want = _by_name([_normalise(obj, cluster_name) for obj in expected])
    got = _by_name(
        [_normalise(obj, cluster_name) for obj in children.namespaced + children.cluster]
    )
    assert sorted(got) == sorted(want)
    for key, obj in want.items():
        assert got[key] == obj, key
