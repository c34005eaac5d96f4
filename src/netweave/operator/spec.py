"""The ``O2IMSGateway`` spec as the operator reads it, and the checks the CRD cannot make.

The CRD's structural schema (``deploy/operator/crd.yaml``) types every field, applies the
defaults and refuses malformed values on the API server. These models repeat its fields and
defaults (tests compare them with what the server stores), so the operator works on typed
values; :func:`check` then refuses what only makes sense together, the same things the Helm
chart's ``netweave.validate`` refuses at ``helm install`` (a crash-looping pod is worse than a
``Degraded`` condition naming the field), plus what the chart cannot see: a tenancy file the
gateway would reject, and ``config`` keys that are not settings or whose values the setting
would refuse.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Final, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from netweave.config import Settings
from netweave.security.tenancy import parse_tenancy_seed

__all__ = [
    "DERIVED_SETTINGS",
    "GatewaySpec",
    "SpecError",
    "check",
    "setting_value",
]

#: settings the operator derives from the spec's own fields (files, listen address, Redis)
DERIVED_SETTINGS: Final = frozenset(
    {
        "host",
        "port",
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        "tls_client_cert_mode",
        "tenancy_file",
        "paging_secret_file",
        "notification_secret_file",
        "token_key_files",
        "redis_url",
        "kubeconfig",
    }
)
#: settings that are secrets: never a value of the spec, always a Secret the pods mount
_SECRET_SETTINGS: Final = frozenset({"paging_secret", "notification_secret", "redis_url"})
#: spec.backend fields and the settings they set
BACKEND_SETTINGS: Final = {
    "type": "backend",
    "cluster_name": "cluster_name",
    "pool_label": "pool_label",
    "machine_set_template": "machineset_template",
}


class SpecError(ValueError):
    """The spec cannot be deployed; the message names the field (``redis.sentinel.hosts:``)."""


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


_Name = Annotated[str, Field(min_length=1, max_length=253)]


class SecretKeyRef(_Spec):
    """A key of a Secret in the gateway's namespace."""

    name: _Name
    key: _Name


class RedisURLSecret(SecretKeyRef):
    name: _Name = "netweave-redis"
    key: _Name = "url"


class PasswordSecret(SecretKeyRef):
    key: _Name = "password"


class SigningSecret(SecretKeyRef):
    key: _Name = "secret"


class ImageSpec(_Spec):
    repository: _Name = "netweave"
    #: ``sha256:...``: pins the exact image and wins over the version
    digest: Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$")] | None = None
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    pull_secrets: list[_Name] = []


class IssuerRef(_Spec):
    name: _Name
    kind: Literal["Issuer", "ClusterIssuer"] = "ClusterIssuer"
    group: _Name = "cert-manager.io"


class TLSSpec(_Spec):
    """The serving certificate: an existing ``kubernetes.io/tls`` Secret, or a cert-manager
    Certificate from ``issuerRef`` (renewed into ``<name>-tls``)."""

    enabled: bool = True
    secret_name: _Name | None = None
    issuer_ref: IssuerRef | None = None
    #: names besides the Service's own (cert-manager only)
    dns_names: list[_Name] = []


class MTLSSpec(_Spec):
    enabled: bool = True
    client_ca_secret: _Name = Field(default="netweave-client-ca", alias="clientCASecret")
    client_ca_key: _Name = Field(default="ca.crt", alias="clientCAKey")
    client_cert_mode: Literal["optional", "required"] = "optional"


class SentinelSpec(_Spec):
    hosts: list[Annotated[str, Field(pattern=r"^[^\s/:,@?#]+:[0-9]{1,5}$")]] = []
    master: _Name = "mymaster"
    db: Annotated[int, Field(ge=0, le=1024)] = 0
    tls: bool = False
    password_secret: PasswordSecret | None = None
    authenticate_sentinels: bool = False


class RedisSpec(_Spec):
    mode: Literal["none", "url", "sentinel"] = "url"
    url_secret: RedisURLSecret = RedisURLSecret()
    sentinel: SentinelSpec = SentinelSpec()


class BackendSpec(_Spec):
    type: Literal["kubernetes", "simulated"] = "kubernetes"
    cluster_name: _Name | None = None
    pool_label: _Name | None = None
    machine_set_template: _Name | None = None


class TenancySpec(_Spec):
    """The tenancy bootstrap: inline (the file's content: tenants, users, roleBindings) or
    a ConfigMap of the namespace holding ``tenancy.yaml``."""

    inline: dict[str, Any] | None = None
    config_map_name: _Name | None = None


class PagingSpec(_Spec):
    #: the Secret signing paging markers; null: none (one replica only)
    secret_name: _Name | None = "netweave-paging"
    key: _Name = "secret"


class NotificationsSpec(_Spec):
    signing_secret: SigningSecret | None = None


class GatewaySpec(_Spec):
    """``spec`` of an ``O2IMSGateway``; the defaults are the Helm chart's ``values.yaml``."""

    replicas: Annotated[int, Field(ge=0, le=100)] = 3
    #: the image tag; defaults to the operator's own version
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None = None
    image: ImageSpec = ImageSpec()
    tls: TLSSpec = TLSSpec()
    mtls: MTLSSpec = MTLSSpec()
    redis: RedisSpec = RedisSpec()
    backend: BackendSpec = BackendSpec()
    tenancy: TenancySpec = TenancySpec()
    paging: PagingSpec = PagingSpec()
    notifications: NotificationsSpec = NotificationsSpec()
    #: further settings: the README's names in lower case without ``NETWEAVE_``
    config: dict[str, Any] = {}

    @classmethod
    def parse(cls, spec: Any) -> GatewaySpec:
        """The spec of a custom resource; :class:`SpecError` naming the first bad field."""
        try:
            return cls.model_validate(spec or {})
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "spec"
            raise SpecError(f"{where}: {error['msg']}") from None

    def settings(self) -> dict[str, Any]:
        """The gateway's settings from the spec: the chart's defaults, ``backend`` and
        ``config`` (which :func:`check` has made sure do not overlap)."""
        values: dict[str, Any] = {
            "backend": "kubernetes",
            "log_level": "info",
            "log_format": "json",
        }
        for field, setting in BACKEND_SETTINGS.items():
            value = getattr(self.backend, field)
            if value is not None:
                values[setting] = value
        values.update(self.config)
        return values


def check(spec: GatewaySpec) -> None:
    """Refuse what the gateway could not run with; :class:`SpecError` names the field."""
    _check_config(spec)
    replicated = spec.replicas > 1
    if replicated and spec.redis.mode == "none":
        raise SpecError(
            "redis.mode: several replicas share subscriptions, the outbox and tenancy only "
            "through Redis; use url or sentinel, or one replica"
        )
    if replicated and spec.paging.secret_name is None:
        raise SpecError("paging.secretName: several replicas must sign paging markers with one key")
    if spec.redis.mode == "sentinel" and not spec.redis.sentinel.hosts:
        raise SpecError("redis.sentinel.hosts: list the sentinels (host:port)")
    if spec.mtls.enabled and not spec.tls.enabled:
        raise SpecError("mtls.enabled: client certificates need TLS (tls.enabled)")
    if spec.tls.secret_name is not None and spec.tls.issuer_ref is not None:
        raise SpecError("tls: name either secretName or issuerRef (cert-manager), not both")
    if spec.tls.dns_names and spec.tls.issuer_ref is None:
        raise SpecError("tls.dnsNames: only a cert-manager certificate (issuerRef) has names")
    settings = spec.settings()
    token = settings.get("token_issuer")
    auth_mode = str(settings.get("auth_mode", "auto"))
    if not (spec.mtls.enabled or token or auth_mode in ("mtls", "any", "both")) and (
        str(settings.get("insecure", "")).lower() != "true"
    ):
        raise SpecError(
            "mtls.enabled: configure client certificates, or config.token_issuer with its "
            "keys, or set config.insecure=true (every request then acts as platform-admin)"
        )
    if spec.tenancy.inline is not None and spec.tenancy.config_map_name is not None:
        raise SpecError("tenancy: give either inline or configMapName, not both")
    if spec.tenancy.inline is not None:
        try:
            parse_tenancy_seed(spec.tenancy.inline)
        except ValueError as exc:
            raise SpecError(f"tenancy.inline: {exc}") from None


def _check_config(spec: GatewaySpec) -> None:
    fields = Settings.model_fields
    from_backend = {
        setting: f"backend.{to_camel(field)}" for field, setting in BACKEND_SETTINGS.items()
    }
    for key, value in spec.config.items():
        where = f"config.{key}"
        if key in _SECRET_SETTINGS:
            raise SpecError(f"{where}: a secret is never a value of the spec; name its Secret")
        if key in DERIVED_SETTINGS:
            raise SpecError(f"{where}: set by the operator from the spec's own fields")
        if key in from_backend:
            raise SpecError(f"{where}: set it as {from_backend[key]}")
        if key not in fields:
            raise SpecError(f"{where}: not a setting (names are lower case, without NETWEAVE_)")
        if value is None:
            continue
        text = setting_value(value)
        try:
            _adapter(key).validate_python(_environment_value(key, text))
        except (pydantic.ValidationError, ValueError) as exc:
            message = (
                exc.errors()[0]["msg"] if isinstance(exc, pydantic.ValidationError) else str(exc)
            )
            raise SpecError(f"{where}: {message}") from None


def setting_value(value: Any) -> str:
    """A setting as the text of its ``NETWEAVE_*`` variable: maps and lists as JSON,
    booleans in lower case, whole floats without a fraction (the chart's rendering)."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _environment_value(key: str, text: str) -> Any:
    """What pydantic-settings makes of the variable: JSON for maps, the text otherwise."""
    annotation = Settings.model_fields[key].annotation
    if getattr(annotation, "__origin__", None) is dict:
        return json.loads(text)
    return text


@cache
def _adapter(key: str) -> pydantic.TypeAdapter[Any]:
    """The type and constraints of one setting (its own validators are the gateway's)."""
    field = Settings.model_fields[key]
    annotated: Any = field.annotation
    if field.metadata:
        annotated = Annotated[(annotated, *field.metadata)]
    return pydantic.TypeAdapter(annotated)
