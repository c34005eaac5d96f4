"""The Helm chart (deploy/helm/netweave), rendered by Helm's own library (helm-python-sdk).

The chart lints clean; rendered against the real test API server (Kubernetes 1.20) with its
default values, values-production.yaml and a development setting, every object is accepted
by a server-side dry run with nothing dropped, and the API-version switches pick what that
server serves; rendered offline they pick the current versions. The invariants of
tests/deploy/invariants.py hold, and the chart refuses values it could not run safely.
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
import yaml
from tests.deploy import invariants
from tests.deploy.conftest import NAMESPACE, Cluster
from tests.deploy.kube import accepted
from tests.deploy.rendering import (
    CHART,
    ROOT,
    chart_crds,
    chart_values,
    render_chart_for,
    render_chart_offline,
)

from netweave.config import load_settings

PRODUCTION = chart_values("values-production.yaml")
#: a development install: one replica, simulated backend, plain HTTP, no authentication
DEVELOPMENT: dict[str, Any] = {
    "replicaCount": 1,
    "config": {"backend": "simulated", "insecure": True},
    "tls": {"enabled": False},
    "mtls": {"enabled": False},
    "redis": {"mode": "none"},
    "paging": {"existingSecret": ""},
    "podDisruptionBudget": {"enabled": False},
}
VALUES = {"default": None, "production": PRODUCTION, "development": DEVELOPMENT}
MONITORING_GROUPS = yaml.safe_load(
    (ROOT / "deploy" / "monitoring" / "prometheusrule.yaml").read_text()
)["spec"]["groups"]


@pytest.mark.parametrize("kube_version", ["v1.20.2", "v1.31.0"])
@pytest.mark.parametrize("name", ["default", "production", "development"])
def test_chart_lints_clean(name: str, kube_version: str) -> None:
    report = helm.lint(CHART, VALUES[name], strict=True, kube_version=kube_version)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert problems == []


def test_default_values_on_kubernetes_1_20(cluster: Cluster) -> None:
    objects = render_chart_for(cluster.server, None, NAMESPACE)
    assert invariants.kinds(objects) == {
        "ServiceAccount": "v1",
        "ClusterRole": "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
        "ConfigMap": "v1",
        "Deployment": "apps/v1",
        "Service": "v1",
        # 1.20 serves no policy/v1
        "PodDisruptionBudget": "policy/v1beta1",
    }
    accepted(cluster.http, cluster.catalog, objects, NAMESPACE)
    accepted(cluster.http, cluster.catalog, chart_crds(), NAMESPACE)
    invariants.check_all(objects, scheme="HTTPS")
    assert invariants.one(objects, "Deployment")["spec"]["replicas"] == 3


def test_production_values_on_kubernetes_1_20(cluster: Cluster) -> None:
    objects = render_chart_for(cluster.server, PRODUCTION, NAMESPACE)
    found = invariants.kinds(objects)
    assert found["HorizontalPodAutoscaler"] == "autoscaling/v2beta2"  # 1.20 has no v2
    assert found["PodDisruptionBudget"] == "policy/v1beta1"
    for kind in ("Certificate", "ServiceMonitor", "PrometheusRule"):
        assert kind in found
    accepted(cluster.http, cluster.catalog, objects, NAMESPACE)
    invariants.check_all(objects, scheme="HTTPS")

    deployment = invariants.one(objects, "Deployment")
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    assert invariants.one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    env = {item["name"]: item for item in invariants.container(objects)["env"]}
    assert env["NETWEAVE_REDIS_URL"]["value"].startswith("redis+sentinel://:$(REDIS_PASSWORD)@")
    assert env["NETWEAVE_TLS_CLIENT_CERT_MODE"]["value"] == "optional"
    certificate = invariants.one(objects, "Certificate")["spec"]
    tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == certificate["secretName"]
    assert "netweave.netweave.svc" in certificate["dnsNames"]
    assert invariants.one(objects, "PrometheusRule")["spec"]["groups"] == MONITORING_GROUPS


def test_development_values_on_kubernetes_1_20(cluster: Cluster) -> None:
    objects = render_chart_for(cluster.server, DEVELOPMENT, NAMESPACE)
    accepted(cluster.http, cluster.catalog, objects, NAMESPACE)
    invariants.check_no_plain_secrets(objects)
    invariants.check_settings_known(objects)
    invariants.check_pod_security(objects)
    invariants.check_probes(objects, scheme="HTTP")
    invariants.check_volumes(objects)
    pod = invariants.one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False, "the simulated backend needs no token"
    assert invariants.one(objects, "ConfigMap")["data"]["NETWEAVE_INSECURE"] == "true"


def test_offline_rendering_picks_the_current_api_versions() -> None:
    # helm template: Helm's built-in capabilities, a current Kubernetes
    found = invariants.kinds(render_chart_offline(PRODUCTION, NAMESPACE))
    assert found["PodDisruptionBudget"] == "policy/v1"
    assert found["HorizontalPodAutoscaler"] == "autoscaling/v2"


def test_required_client_certificates_fall_back_to_tcp_probes() -> None:
    objects = render_chart_offline({"mtls": {"clientCertMode": "required"}}, NAMESPACE)
    gateway = invariants.container(objects)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert gateway[probe]["tcpSocket"] == {"port": "api"}, probe


def test_settings_reach_the_gateway_as_it_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {
        "backend": "simulated",
        "token_cache_size": 1000000,  # Helm reads numbers as floats: no "1e+06"
        "delivery_max_age": 1.5,
        "access_log": False,
        "token_role_map": {"o2-admin": "platform-admin"},
        "simulated_pool_owners": {"mad-core": "smo-a"},
        "callback_allowlist": "10.0.0.0/8,smo.example.net",
    }
    objects = render_chart_offline({"config": config}, NAMESPACE)
    data = invariants.one(objects, "ConfigMap")["data"]
    assert data["NETWEAVE_TOKEN_CACHE_SIZE"] == "1000000"
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    for key, value in config.items():
        assert getattr(settings, key) == value, key


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"config": {"redis_url": "redis://:hunter2@redis:6379"}}, "never goes in values"),
        ({"config": {"paging_secret": "hunter2"}}, "never goes in values"),
        ({"config": {"notification_secret": "hunter2"}}, "never goes in values"),
        ({"config": {"tls_cert_file": "/x.pem"}}, "set by the chart"),
        ({"config": {"LOG_LEVEL": "debug"}}, "lower-case"),
        ({"redis": {"mode": "none"}}, "several replicas"),
        ({"redis": {"mode": "cluster"}}, "none, url or sentinel"),
        ({"paging": {"existingSecret": ""}}, "one key"),
        ({"mtls": {"enabled": False}}, "authentication"),
        ({"tls": {"enabled": False}}, "client certificates need TLS"),
        ({"tls": {"source": "certManager"}}, "issuerRef.name"),
        ({"redis": {"mode": "sentinel"}}, "redis.sentinel.hosts"),
    ],
)
def test_chart_refuses_what_cannot_run_safely(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as refused:
        render_chart_offline(values, NAMESPACE)
    assert message in str(refused.value)
    assert "hunter2" not in str(refused.value)
