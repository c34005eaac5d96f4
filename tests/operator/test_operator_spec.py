"""The spec: the CRD and the operator's models agree (fields, names, defaults), the checks
the CRD cannot make, and the status conditions."""

from __future__ import annotations

import datetime
import types
import typing
from typing import Any

import httpx
import pydantic
import pytest
from tests.operator.kube import crd, create_gateway, gateway_path, get

from netweave.operator.spec import GatewaySpec, SpecError, check, setting_value
from netweave.operator.status import Condition, merge_conditions, rollout_conditions

#: every field of the spec set to something other than its default
EVERY_FIELD: dict[str, Any] = {
    "replicas": 4,
    "version": "1.0.0-rc.1",
    "image": {
        "repository": "registry.example.net/netweave",
        "digest": "sha256:" + "0" * 64,
        "pullPolicy": "Always",
        "pullSecrets": ["regcred"],
    },
    "tls": {
        "enabled": True,
        "secretName": "tls",
        "issuerRef": {"name": "ca", "kind": "Issuer", "group": "cert-manager.io"},
        "dnsNames": ["o2.example.net"],
    },
    "mtls": {
        "enabled": True,
        "clientCASecret": "ca",
        "clientCAKey": "bundle.pem",
        "clientCertMode": "required",
    },
    "redis": {
        "mode": "sentinel",
        "urlSecret": {"name": "redis", "key": "uri"},
        "sentinel": {
            "hosts": ["s0:26379"],
            "master": "m",
            "db": 3,
            "tls": True,
            "passwordSecret": {"name": "auth", "key": "pw"},
            "authenticateSentinels": True,
        },
    },
    "backend": {
        "type": "simulated",
        "clusterName": "c",
        "poolLabel": "example.net/pool",
        "machineSetTemplate": "default/template",
    },
    "tenancy": {"inline": {"tenants": [{"tenantId": "t", "name": "T"}]}, "configMapName": "cm"},
    "paging": {"secretName": "paging", "key": "k"},
    "notifications": {"signingSecret": {"name": "signing", "key": "s"}},
    "config": {"log_level": "debug", "token_role_map": {"a": "platform-admin"}},
}


def _crd_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        paths.add(path)
        if sub.get("type") == "object" and not sub.get("x-kubernetes-preserve-unknown-fields"):
            paths |= _crd_paths(sub, f"{path}.")
    return paths


def _model_paths(model: type[pydantic.BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        paths.add(path)
        annotation = field.annotation
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            paths |= _model_paths(annotation, f"{path}.")
    return paths


def _compact(value: Any) -> Any:
    """Without nulls, empty lists and empty maps (the server omits them, the models keep)."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def test_the_crd_and_the_models_name_the_same_fields() -> None:
    (version,) = crd()["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert _crd_paths(spec) == _model_paths(GatewaySpec)
    assert _compact(GatewaySpec.parse(EVERY_FIELD).model_dump(by_alias=True)) == EVERY_FIELD


def test_the_server_defaults_are_the_models_and_it_keeps_every_field(
    kube_admin: httpx.Client, namespace: str
) -> None:
    create_gateway(kube_admin, namespace, "defaults", {})
    create_gateway(kube_admin, namespace, "every", EVERY_FIELD)
    defaults = get(kube_admin, gateway_path(namespace, "defaults"))
    every = get(kube_admin, gateway_path(namespace, "every"))
    assert defaults is not None and every is not None
    assert _compact(defaults["spec"]) == _compact(GatewaySpec().model_dump(by_alias=True))
    assert every["spec"] == EVERY_FIELD  # nothing pruned, nothing defaulted over


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"replicas": 2, "redis": {"mode": "none"}}, "redis.mode: several replicas"),
        ({"replicas": 2, "paging": {"secretName": None}}, "paging.secretName: several"),
        ({"redis": {"mode": "sentinel"}}, "redis.sentinel.hosts: list the sentinels"),
        ({"tls": {"enabled": False}}, "mtls.enabled: client certificates need TLS"),
        ({"mtls": {"enabled": False}}, "mtls.enabled: configure client certificates"),
        ({"tls": {"secretName": "a", "issuerRef": {"name": "b"}}}, "tls: name either"),
        ({"tls": {"dnsNames": ["a"]}}, "tls.dnsNames: only a cert-manager"),
        (
            {"tenancy": {"inline": {"tenants": []}, "configMapName": "cm"}},
            "tenancy: give either inline or configMapName",
        ),
        (
            {"tenancy": {"inline": {"users": [{"tenantId": "x", "subject": "CN=a"}]}}},
            "tenancy.inline: users[0].tenantId: the file defines no tenant x",
        ),
        ({"tenancy": {"inline": {"groups": []}}}, "tenancy.inline: groups: unknown section"),
        ({"config": {"redis_url": "redis://x"}}, "config.redis_url: a secret"),
        ({"config": {"tls_cert_file": "/x"}}, "config.tls_cert_file: set by the operator"),
        ({"config": {"cluster_name": "x"}}, "config.cluster_name: set it as backend.clusterName"),
        ({"config": {"backend": "simulated"}}, "config.backend: set it as backend.type"),
        ({"config": {"LOG_LEVEL": "info"}}, "config.LOG_LEVEL: not a setting"),
        ({"config": {"no_such_setting": 1}}, "config.no_such_setting: not a setting"),
        ({"config": {"max_page_size": 0}}, "config.max_page_size: Input should be greater"),
        ({"config": {"delivery_timeout": "soon"}}, "config.delivery_timeout: Input should be"),
        ({"config": {"token_role_map": ["a"]}}, "config.token_role_map: Input should be"),
        ({"replicas": -1}, "replicas: Input should be greater than or equal to 0"),
        ({"mtls": {"clientCaKey": "x"}}, "mtls.clientCaKey: Extra inputs are not permitted"),
    ],
)
def test_specs_that_cannot_run_are_refused_naming_the_field(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as refused:
        check(GatewaySpec.parse(spec))
    assert str(refused.value).startswith(message), str(refused.value)


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"replicas": 1, "redis": {"mode": "none"}, "paging": {"secretName": None}},
        {"tls": {"enabled": False}, "mtls": {"enabled": False}, "config": {"insecure": True}},
        {
            "mtls": {"enabled": False},
            "config": {
                "token_issuer": "https://idp.example.net",
                "token_audience": "netweave",
                "token_jwks_url": "https://idp.example.net/jwks",
            },
        },
        {"config": {"max_page_size": "500", "access_log": False, "service_uri": None}},
    ],
)
def test_specs_that_can_run_pass(spec: dict[str, Any]) -> None:
    check(GatewaySpec.parse(spec))


def test_settings_are_rendered_as_the_chart_renders_them() -> None:
    assert setting_value(True) == "true"
    assert setting_value(200.0) == "200"
    assert setting_value(0.5) == "0.5"
    assert setting_value({"b": "1", "a": "2"}) == '{"a":"2","b":"1"}'
    assert setting_value("x") == "x"


def _deployment(desired: int, **status: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": 2, **status},
    }


@pytest.mark.parametrize(
    ("deployment", "progressing", "ready"),
    [
        (None, ("False", "Blocked"), ("False", "NoDeployment")),
        (
            {**_deployment(3), "status": {"observedGeneration": 1}},
            ("True", "RollingOut"),
            ("False", "ReplicasUnavailable"),
        ),
        (
            _deployment(3, updatedReplicas=1),
            ("True", "RollingOut"),
            ("False", "ReplicasUnavailable"),
        ),
        (
            _deployment(3, updatedReplicas=3, replicas=4, availableReplicas=3),
            ("True", "RollingOut"),
            ("True", "ReplicasAvailable"),
        ),
        (
            _deployment(3, updatedReplicas=3, replicas=3, availableReplicas=2),
            ("True", "RollingOut"),
            ("False", "ReplicasUnavailable"),
        ),
        (
            _deployment(3, updatedReplicas=3, replicas=3, availableReplicas=3),
            ("False", "RolloutComplete"),
            ("True", "ReplicasAvailable"),
        ),
        (_deployment(0), ("False", "RolloutComplete"), ("False", "ScaledToZero")),
    ],
)
def test_rollout_conditions(
    deployment: dict[str, Any] | None, progressing: tuple[str, str], ready: tuple[str, str]
) -> None:
    got = {c.type: c for c in rollout_conditions(deployment, degraded=False)}
    for kind, (status, reason) in (("Progressing", progressing), ("Ready", ready)):
        assert (str(got[kind].status), got[kind].reason) == (status, reason), kind


def test_a_degraded_gateway_is_not_progressing() -> None:
    done = _deployment(3, updatedReplicas=3, replicas=3, availableReplicas=3)
    got = {c.type: c for c in rollout_conditions(done, degraded=True)}
    assert (got["Progressing"].status, got["Progressing"].reason) == (False, "Blocked")
    assert got["Ready"].status  # the pods of the last good spec still serve


def test_a_condition_keeps_its_transition_time_while_its_status_stays() -> None:
    first = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    later = first + datetime.timedelta(minutes=5)
    conditions = merge_conditions(
        [], [Condition("Ready", False, "ReplicasUnavailable", "0")], 1, first
    )
    conditions = merge_conditions(
        conditions,
        [
            Condition("Ready", False, "ReplicasUnavailable", "1"),
            Condition("Degraded", False, "R", ""),
        ],
        2,
        later,
    )
    ready = next(c for c in conditions if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert ready["message"] == "1"
    assert ready["observedGeneration"] == 2
    conditions = merge_conditions(
        conditions, [Condition("Ready", True, "ReplicasAvailable", "")], 3, later
    )
    ready = next(c for c in conditions if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-01T00:05:00Z"
    assert [c["type"] for c in conditions] == ["Ready", "Degraded"]
