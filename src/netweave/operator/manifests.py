"""The objects of one ``O2IMSGateway``: those the Helm chart makes, built from the spec.

The chart (``deploy/helm/netweave``) stays the reference: ``tests/operator`` renders it with
the values matching a spec and compares it with :func:`build`, object for object, so the two
cannot drift apart. What differs, on purpose:

* labels: ``app.kubernetes.io/managed-by: netweave-operator`` and no ``helm.sh/chart``;
  ``app.kubernetes.io/version`` is the image tag;
* namespaced objects carry a controller owner reference to the ``O2IMSGateway``, so the
  garbage collector deletes them with it;
* the ClusterRole and its binding are cluster-scoped, which a namespaced owner cannot own:
  they are named ``<namespace>:<fullname>`` (two gateways in two namespaces never share one),
  labelled with the owner, and deleted by the operator's deletion handler;
* the PodDisruptionBudget's API version is the one the cluster serves (``policy/v1`` from
  Kubernetes 1.21, ``policy/v1beta1`` before), as ``helm install`` chooses it;
* the pods' ``checksum/*`` annotations hash the operator's rendering of the ConfigMaps.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from netweave.operator.rules import GATEWAY_RULES
from netweave.operator.spec import GatewaySpec, setting_value

__all__ = [
    "GROUP",
    "KIND",
    "MANAGER",
    "OWNER_NAMESPACE_LABEL",
    "OWNER_NAME_LABEL",
    "OWNER_UID_LABEL",
    "PLURAL",
    "VERSION",
    "Children",
    "Manifest",
    "ObjectRef",
    "Owner",
    "build",
    "cluster_role_name",
    "fullname",
]

Manifest = dict[str, Any]

GROUP: Final = "o2ims.oran.org"
VERSION: Final = "v1alpha1"
KIND: Final = "O2IMSGateway"
PLURAL: Final = "o2imsgateways"
#: the server-side apply field manager, and the ``managed-by`` label of every child
MANAGER: Final = "netweave-operator"
OWNER_NAMESPACE_LABEL: Final = f"{GROUP}/gateway-namespace"
OWNER_NAME_LABEL: Final = f"{GROUP}/gateway-name"
OWNER_UID_LABEL: Final = f"{GROUP}/gateway-uid"

_PORT: Final = 8080
_CHART: Final = "netweave"


@dataclass(frozen=True)
class Owner:
    """The ``O2IMSGateway`` the objects belong to."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class ObjectRef:
    """One object by kind and name (namespace: the owner's, unless cluster-scoped)."""

    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class Children:
    """What to apply, and the optional objects this spec does not make (to delete if an
    earlier spec made them)."""

    namespaced: list[Manifest]
    cluster: list[Manifest]
    absent: list[ObjectRef] = field(default_factory=list)
    #: the image the Deployment runs and its tag (the status reports them)
    image: str = ""
    version: str = ""

    @property
    def deployment(self) -> Manifest:
        return next(obj for obj in self.namespaced if obj["kind"] == "Deployment")


def fullname(name: str) -> str:
    """The chart's ``netweave.fullname`` for a release named ``name``."""
    full = name if _CHART in name else f"{name}-{_CHART}"
    return full[:63].rstrip("-")


def cluster_role_name(owner: Owner) -> str:
    """The name of the gateway's ClusterRole and ClusterRoleBinding (cluster-wide, so
    qualified by the namespace; neither part can hold a colon)."""
    return f"{owner.namespace}:{fullname(owner.name)}"


def build(owner: Owner, spec: GatewaySpec, *, version: str, pdb_api_version: str) -> Children:
    """The objects of ``owner`` for ``spec`` (already checked with :func:`spec.check`);
    ``version``: the image tag when the spec names none."""
    tag = spec.version or version
    image = (
        f"{spec.image.repository}@{spec.image.digest}"
        if spec.image.digest
        else f"{spec.image.repository}:{tag}"
    )
    names = _Names(owner)
    labels = _labels(owner, tag)
    config = _config_map(owner, spec, names, labels)
    tenancy = _tenancy_config_map(owner, spec, names, labels)
    namespaced: list[Manifest] = [
        _service_account(owner, names, labels),
        config,
        *([tenancy] if tenancy else []),
        _service(owner, spec, names, labels),
        _deployment(owner, spec, names, labels, image, config, tenancy),
        _pdb(owner, names, labels, pdb_api_version),
    ]
    absent = [] if tenancy else [ObjectRef("v1", "ConfigMap", names.tenancy)]
    certificate = _certificate(owner, spec, names, labels)
    if certificate:
        namespaced.append(certificate)
    else:
        absent.append(ObjectRef("cert-manager.io/v1", "Certificate", names.full))
    reference = _owner_reference(owner)
    for obj in namespaced:
        obj["metadata"]["ownerReferences"] = [reference]
    cluster_labels = {
        **labels,
        OWNER_NAMESPACE_LABEL: owner.namespace,
        OWNER_NAME_LABEL: owner.name,
        OWNER_UID_LABEL: owner.uid,
    }
    return Children(
        namespaced=namespaced,
        cluster=_cluster_rbac(owner, names, cluster_labels),
        absent=absent,
        image=image,
        version=tag,
    )


class _Names:
    """The names of one gateway's objects."""

    def __init__(self, owner: Owner) -> None:
        self.full = fullname(owner.name)
        self.config = f"{self.full}-config"
        self.tenancy = f"{self.full}-tenancy"
        self.cluster = cluster_role_name(owner)


def _selector(owner: Owner) -> dict[str, str]:
    return {"app.kubernetes.io/name": _CHART, "app.kubernetes.io/instance": owner.name}


def _labels(owner: Owner, tag: str) -> dict[str, str]:
    return {
        **_selector(owner),
        "app.kubernetes.io/version": tag,
        "app.kubernetes.io/component": "o2ims-gateway",
        "app.kubernetes.io/part-of": "netweave",
        "app.kubernetes.io/managed-by": MANAGER,
    }


def _metadata(name: str, labels: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def _owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _service_account(owner: Owner, names: _Names, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(names.full, labels, owner.namespace),
    }


def _config_map(owner: Owner, spec: GatewaySpec, names: _Names, labels: dict[str, str]) -> Manifest:
    data = {
        f"NETWEAVE_{key.upper()}": setting_value(value)
        for key, value in sorted(spec.settings().items())
        if value is not None
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(names.config, labels, owner.namespace),
        "data": data,
    }


def _tenancy_config_map(
    owner: Owner, spec: GatewaySpec, names: _Names, labels: dict[str, str]
) -> Manifest | None:
    if spec.tenancy.inline is None or spec.tenancy.config_map_name is not None:
        return None
    text = yaml.safe_dump(spec.tenancy.inline, sort_keys=True, default_flow_style=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(names.tenancy, labels, owner.namespace),
        "data": {"tenancy.yaml": text},
    }


def _scheme(spec: GatewaySpec) -> str:
    return "https" if spec.tls.enabled else "http"


def _service(owner: Owner, spec: GatewaySpec, names: _Names, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(names.full, labels, owner.namespace),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(owner),
            "ports": [
                {
                    "name": "api",
                    "port": _PORT,
                    "targetPort": "api",
                    "protocol": "TCP",
                    "appProtocol": _scheme(spec),
                }
            ],
        },
    }


def _pdb(owner: Owner, names: _Names, labels: dict[str, str], api_version: str) -> Manifest:
    return {
        "apiVersion": api_version,
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(names.full, labels, owner.namespace),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(owner)}},
    }


def _tls_secret(spec: GatewaySpec, names: _Names) -> str:
    if spec.tls.issuer_ref is not None:
        return f"{names.full}-tls"
    return spec.tls.secret_name or "netweave-tls"


def _certificate(
    owner: Owner, spec: GatewaySpec, names: _Names, labels: dict[str, str]
) -> Manifest | None:
    issuer = spec.tls.issuer_ref
    if not spec.tls.enabled or issuer is None:
        return None
    service = [
        names.full,
        f"{names.full}.{owner.namespace}",
        f"{names.full}.{owner.namespace}.svc",
        f"{names.full}.{owner.namespace}.svc.cluster.local",
    ]
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": _metadata(names.full, labels, owner.namespace),
        "spec": {
            "secretName": _tls_secret(spec, names),
            "dnsNames": list(dict.fromkeys([*spec.tls.dns_names, *service])),
            "duration": "2160h",
            "renewBefore": "360h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["server auth", "digital signature", "key encipherment"],
            "issuerRef": {"name": issuer.name, "kind": issuer.kind, "group": issuer.group},
        },
    }


def _cluster_rbac(owner: Owner, names: _Names, labels: dict[str, str]) -> list[Manifest]:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(names.cluster, labels),
        "rules": copy.deepcopy(GATEWAY_RULES),
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _metadata(names.cluster, labels),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": names.cluster,
        },
        "subjects": [{"kind": "ServiceAccount", "name": names.full, "namespace": owner.namespace}],
    }
    return [role, binding]


def _checksum(obj: Manifest | None) -> str:
    text = json.dumps(obj["data"] if obj else None, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _secret_volume(name: str, secret: str, key: str | None = None, path: str = "") -> Manifest:
    source: dict[str, Any] = {"secretName": secret, "defaultMode": 0o440}
    if key is not None:
        source["items"] = [{"key": key, "path": path}]
    return {"name": name, "secret": source}


def _deployment(
    owner: Owner,
    spec: GatewaySpec,
    names: _Names,
    labels: dict[str, str],
    image: str,
    config: Manifest,
    tenancy: Manifest | None,
) -> Manifest:
    env, mounts, volumes = _environment(owner, spec, names)
    settings = spec.settings()
    http_probes = not (spec.mtls.enabled and spec.mtls.client_cert_mode == "required")
    pod: dict[str, Any] = {
        "serviceAccountName": names.full,
        # Only the Kubernetes backend talks to the API server.
        "automountServiceAccountToken": settings.get("backend") == "kubernetes",
        # Kubernetes would inject NETWEAVE_SERVICE_HOST and the like: invalid settings.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "netweave",
                "image": image,
                "imagePullPolicy": spec.image.pull_policy,
                "args": ["serve"],
                "ports": [{"name": "api", "containerPort": _PORT, "protocol": "TCP"}],
                "envFrom": [{"configMapRef": {"name": names.config}}],
                "env": env,
                "volumeMounts": mounts,
                **_probes(spec, http_probes),
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"cpu": "2", "memory": "1Gi"},
                },
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": volumes,
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": _selector(owner)},
                        },
                    }
                ]
            }
        },
    }
    if spec.image.pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in spec.image.pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(names.full, labels, owner.namespace),
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 5,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "selector": {"matchLabels": _selector(owner)},
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {
                        # A changed setting or tenancy file rolls the pods.
                        "checksum/config": _checksum(config),
                        "checksum/tenancy": _checksum(tenancy),
                    },
                },
                "spec": pod,
            },
        },
    }


def _environment(
    owner: Owner, spec: GatewaySpec, names: _Names
) -> tuple[list[Manifest], list[Manifest], list[Manifest]]:
    """The container's variables, volume mounts and the pod's volumes (the chart's order)."""
    env: list[Manifest] = [
        {"name": "NETWEAVE_HOST", "value": "0.0.0.0"},
        {"name": "NETWEAVE_PORT", "value": str(_PORT)},
    ]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]

    def mount(name: str, path: str, volume: Manifest) -> None:
        mounts.append({"name": name, "mountPath": path, "readOnly": True})
        volumes.append(volume)

    if not spec.config.get("service_uri"):
        uri = f"{_scheme(spec)}://{names.full}.{owner.namespace}.svc:{_PORT}"
        env.append({"name": "NETWEAVE_SERVICE_URI", "value": uri})
    if spec.tls.enabled:
        env.append({"name": "NETWEAVE_TLS_CERT_FILE", "value": "/etc/netweave/tls/tls.crt"})
        env.append({"name": "NETWEAVE_TLS_KEY_FILE", "value": "/etc/netweave/tls/tls.key"})
        mount("tls", "/etc/netweave/tls", _secret_volume("tls", _tls_secret(spec, names)))
    if spec.mtls.enabled:
        env.append(
            {"name": "NETWEAVE_TLS_CLIENT_CA_FILE", "value": "/etc/netweave/client-ca/ca.crt"}
        )
        env.append({"name": "NETWEAVE_TLS_CLIENT_CERT_MODE", "value": spec.mtls.client_cert_mode})
        volume = _secret_volume(
            "client-ca", spec.mtls.client_ca_secret, spec.mtls.client_ca_key, "ca.crt"
        )
        mount("client-ca", "/etc/netweave/client-ca", volume)
    tenancy = spec.tenancy.config_map_name or (
        names.tenancy if spec.tenancy.inline is not None else None
    )
    if tenancy:
        env.append({"name": "NETWEAVE_TENANCY_FILE", "value": "/etc/netweave/tenancy/tenancy.yaml"})
        volume = {
            "name": "tenancy",
            "configMap": {
                "name": tenancy,
                "items": [{"key": "tenancy.yaml", "path": "tenancy.yaml"}],
            },
        }
        mount("tenancy", "/etc/netweave/tenancy", volume)
    if spec.paging.secret_name:
        env.append({"name": "NETWEAVE_PAGING_SECRET_FILE", "value": "/etc/netweave/paging/secret"})
        volume = _secret_volume("paging", spec.paging.secret_name, spec.paging.key, "secret")
        mount("paging", "/etc/netweave/paging", volume)
    signing = spec.notifications.signing_secret
    if signing is not None:
        env.append(
            {
                "name": "NETWEAVE_NOTIFICATION_SECRET_FILE",
                "value": "/etc/netweave/notification/secret",
            }
        )
        volume = _secret_volume("notification", signing.name, signing.key, "secret")
        mount("notification", "/etc/netweave/notification", volume)
    env.extend(_redis_environment(spec))
    return env, mounts, volumes


def _redis_environment(spec: GatewaySpec) -> list[Manifest]:
    redis = spec.redis
    if redis.mode == "url":
        ref = {"name": redis.url_secret.name, "key": redis.url_secret.key}
        return [{"name": "NETWEAVE_REDIS_URL", "valueFrom": {"secretKeyRef": ref}}]
    if redis.mode != "sentinel":
        return []
    sentinel = redis.sentinel
    env: list[Manifest] = []
    auth = ""
    query = f"master={sentinel.master}"
    if sentinel.password_secret is not None:
        # Not a NETWEAVE_ variable (those must be settings); expanded into the URL below.
        ref = {"name": sentinel.password_secret.name, "key": sentinel.password_secret.key}
        env.append({"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": ref}})
        auth = ":$(REDIS_PASSWORD)@"
        if sentinel.authenticate_sentinels:
            query += "&sentinel_password=$(REDIS_PASSWORD)"
    scheme = "rediss+sentinel" if sentinel.tls else "redis+sentinel"
    url = f"{scheme}://{auth}{','.join(sentinel.hosts)}/{sentinel.db}?{query}"
    env.append({"name": "NETWEAVE_REDIS_URL", "value": url})
    return env


def _probes(spec: GatewaySpec, http: bool) -> dict[str, Any]:
    """HTTP(S) probes on /healthz and /readyz; TCP ones when every handshake needs a client
    certificate, which the kubelet does not have."""
    scheme = _scheme(spec).upper()

    def check(path: str) -> dict[str, Any]:
        if http:
            return {"httpGet": {"path": path, "port": "api", "scheme": scheme}}
        return {"tcpSocket": {"port": "api"}}

    return {
        "startupProbe": {**check("/healthz"), "periodSeconds": 2, "failureThreshold": 60},
        "livenessProbe": {
            **check("/healthz"),
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            **check("/readyz"),
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        },
    }
