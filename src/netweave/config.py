"""Configuration: ``NETWEAVE_*`` environment variables, optionally a YAML file.

Precedence, highest first: command-line options, environment variables, the YAML file given with
``--config`` (keys are the setting names without the prefix, lower case, e.g.
``port: 8080``), then the defaults below.  :func:`load_settings` turns every
validation failure into :class:`ConfigError` with one line naming the bad key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from netweave.models.ids import canonical_uuid, default_ocloud_id

ENV_PREFIX = "NETWEAVE_"
_TENANT_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class ConfigError(Exception):
    """Invalid configuration; the message is one line naming the offending key."""


class Settings(BaseSettings):
    """Every setting of the gateway.  Environment: ``NETWEAVE_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port to listen on.")
    backend: Literal["simulated", "kubernetes"] = Field(
        default="simulated", description="Infrastructure backend serving the inventory."
    )
    max_page_size: int = Field(
        default=100, ge=1, le=10_000, description="Most items in one page of a list."
    )
    ocloud_name: str = Field(default="netweave-ocloud", min_length=1)
    ocloud_description: str = Field(default="O-Cloud served by netweave")
    ocloud_id: str | None = Field(
        default=None, description="O-Cloud UUID; derived from ocloud_name when unset."
    )
    global_cloud_id: str | None = Field(
        default=None,
        description="SMO-assigned global O-Cloud UUID; equals ocloud_id until the SMO assigns one.",
    )
    service_uri: str | None = Field(
        default=None,
        description="External O2-IMS apiRoot (used in OCloudInfo and notifications); "
        "defaults to http://host:port.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    paging_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of paging markers; set the same value on every replica. "
        "A random key is generated when unset.",
    )
    paging_secret_file: Path | None = Field(
        default=None, description="File holding the paging key (wins over paging_secret)."
    )
    paging_marker_ttl: float = Field(default=3600.0, gt=0, description="Seconds a marker lives.")
    kubeconfig: Path | None = Field(
        default=None,
        description="Kubernetes backend: kubeconfig file; unset = KUBECONFIG, ~/.kube/config "
        "or the in-cluster service account.",
    )
    kube_context: str | None = Field(default=None, description="kubeconfig context to use.")
    cluster_name: str | None = Field(
        default=None, description="Deployment manager name; defaults to the kubeconfig's cluster."
    )
    pool_label: str = Field(
        default="o2ims.oran.org/resource-pool",
        min_length=1,
        description="Node label that groups nodes into resource pools (without cluster-api).",
    )
    machineset_template: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$",
        description="Kubernetes backend: namespace/name of the MachineSet new pools are "
        "cloned from; unset = the first MachineSet.",
    )
    drain_timeout: float = Field(
        default=300.0, gt=0, le=86_400, description="Seconds a node drain may take."
    )
    drain_grace_period: int | None = Field(
        default=None,
        ge=0,
        description="Grace period (seconds) of the evictions of a drain; unset = each pod's own.",
    )
    global_location_id: str = Field(
        default="unknown", description="globalLocationId of the pools and deployment manager."
    )
    location: str | None = Field(default=None, description="Location text of the pools.")
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis for subscriptions and the delivery outbox (redis://, rediss:// or "
        "redis+sentinel://host:port[,host:port]/db?master=NAME); unset = in-memory store.",
    )
    store_prefix: str = Field(
        default="netweave", min_length=1, description="Prefix of every key in Redis."
    )
    callback_allowlist: str = Field(
        default="",
        description="Comma-separated hosts or CIDRs callbacks may target even though they "
        "are loopback, link-local or metadata addresses.",
    )
    callback_verify: bool = Field(
        default=True, description="Check GET <callback> answers 204 before subscribing."
    )
    callback_verify_timeout: float = Field(default=5.0, gt=0, le=60)
    notification_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key that signs every notification (X-Netweave-Signature).",
    )
    notification_secret_file: Path | None = Field(
        default=None, description="File holding the notification signing key."
    )
    delivery_max_attempts: int = Field(default=10, ge=1, le=1000)
    delivery_max_age: float = Field(
        default=3600.0, gt=0, description="Seconds after the first attempt a delivery gives up."
    )
    delivery_timeout: float = Field(default=10.0, gt=0, le=300, description="Per attempt.")
    delivery_concurrency: int = Field(
        default=64, ge=1, le=10_000, description="Deliveries in flight per replica."
    )
    delivery_visibility_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds after which a delivery taken by a vanished worker is offered again.",
    )
    emitter_lease_ttl: float = Field(
        default=10.0, gt=0, le=300, description="Time to live of the emitter lease (Redis)."
    )
    replica_id: str | None = Field(
        default=None, description="Name of this replica; defaults to hostname and process id."
    )
    simulated_churn_interval: float = Field(
        default=0.0, ge=0, description="Seconds between simulated O-Cloud changes; 0 = none."
    )
    simulated_seed: int = Field(default=0, description="Seed of the simulated O-Cloud's churn.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = Field(default=True, description="Log one line per HTTP request.")
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Also serve /metrics (plain HTTP, no auth) on this port of host; "
        "unset = on the main port only.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For/-Proto "
        "headers are believed; empty = none (the headers are ignored).",
    )

    # Security (docs/security.md) ----------------------------------------------------
    insecure: bool = Field(
        default=False,
        description="Allow serving a non-loopback address with no authentication configured.",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate (chain) the gateway serves HTTPS with."
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of it.")
    tls_client_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle client certificates must chain to (mTLS)."
    )
    tls_client_cert_mode: Literal["none", "optional", "required"] = Field(
        default="none",
        description="Client certificates: not asked for, verified when sent, or required.",
    )
    tls_reload_interval: float = Field(
        default=10.0, ge=0, description="Seconds between checks of the TLS files; 0 = never."
    )
    auth_mode: Literal["auto", "mtls", "token", "any", "both"] = Field(
        default="auto",
        description="Which credentials authenticate a request: a client certificate, a "
        "bearer token, either, or both; auto = whatever is configured (either when both).",
    )
    token_issuer: str | None = Field(default=None, description="Required JWT iss claim.")
    token_audience: str | None = Field(
        default=None, description="Comma-separated accepted JWT aud values."
    )
    token_jwks_url: str | None = Field(
        default=None, description="JWKS URL of the token issuer (https, or http on loopback)."
    )
    token_key_files: str = Field(
        default="", description="Comma-separated PEM public keys, certificates or JWKS files."
    )
    token_algorithms: str = Field(
        default="RS256,ES256,PS256,EdDSA",
        description="Comma-separated accepted JWT algorithms (asymmetric only).",
    )
    token_leeway: float = Field(default=30.0, ge=0, le=600, description="Clock skew, seconds.")
    token_cache_ttl: float = Field(
        default=60.0, ge=0, description="Seconds a verified token is remembered (never past exp)."
    )
    token_cache_size: int = Field(default=10_000, ge=0, description="Tokens remembered; 0 = none.")
    auth_cache_ttl: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Seconds an authenticated principal is reused for the same credentials "
        "(tenancy changes on other replicas take up to this long more to apply).",
    )
    token_tenant_claim: str = Field(default="tenant", min_length=1)
    token_roles_claim: str = Field(default="roles", min_length=1)
    token_scope_claim: str = Field(default="scope", min_length=1)
    token_role_map: dict[str, str] = Field(
        default_factory=lambda: {
            "o2ims-admin": "platform-admin",
            "o2ims-reader": "viewer",
            "o2ims-subscriber": "operator",
        },
        description="Token role (or role:<name> scope) to netweave role.",
    )
    tenancy_file: Path | None = Field(
        default=None,
        description="YAML of tenants, users and role bindings loaded into the store at start.",
    )
    tenant_label: str = Field(
        default="o2ims.netweave.io/tenant",
        min_length=1,
        description="Label (or annotation) naming the tenant owning a pool's backend object.",
    )
    shared_label: str = Field(
        default="o2ims.netweave.io/shared",
        min_length=1,
        description="Label (or annotation) that, set to true, shares an untenanted pool.",
    )
    simulated_pool_owners: dict[str, str] = Field(
        default_factory=dict,
        description="Simulated backend: pool name to owning tenant id, or 'shared'.",
    )
    default_rate_limit: float = Field(
        default=0.0,
        ge=0,
        description="Requests per second per tenant when the tenant sets none; 0 = unlimited.",
    )
    default_rate_burst: int = Field(default=0, ge=0, description="Bucket size; 0 = one second.")
    audit_retention: float = Field(
        default=30 * 86400.0, gt=0, description="Seconds audit records are kept in the store."
    )
    alarm_retention_days: int = Field(
        default=1,
        ge=1,
        le=3650,
        description="Days cleared alarms are kept until the alarm service configuration "
        "(retentionPeriod) is set through the API.",
    )
    alarm_purge_interval: float = Field(
        default=300.0, gt=0, le=86_400, description="Seconds between purges of old alarms."
    )
    security_headers: bool = Field(
        default=True, description="Send HSTS (with TLS), nosniff, frame and cache headers."
    )

    @field_validator("ocloud_id", "global_cloud_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return canonical_uuid(value, name="the value")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{part.strip()!r} is not an address or CIDR") from None
        return value

    @field_validator("simulated_pool_owners")
    @classmethod
    def _owners(cls, value: dict[str, str]) -> dict[str, str]:
        for pool, owner in value.items():
            if not _TENANT_ID.fullmatch(owner):
                raise ValueError(f"{pool}: {owner!r} is not a tenant id (or 'shared')")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        schemes = ("redis://", "rediss://", "redis+sentinel://", "unix://")
        if value is not None and not value.get_secret_value().startswith(schemes):
            raise ValueError("must be a redis://, rediss://, redis+sentinel:// or unix:// URL")
        return value

    @field_validator("service_uri")
    @classmethod
    def _absolute_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _files_readable(self) -> Settings:
        if (
            self.notification_secret_file is not None
            and not self.notification_secret_file.is_file()
        ):
            raise ValueError(
                f"notification_secret_file: {self.notification_secret_file} is not a file"
            )
        if self.kubeconfig is not None and not self.kubeconfig.is_file():
            raise ValueError(f"kubeconfig: {self.kubeconfig} is not a file")
        if self.paging_secret_file is not None and not self.paging_secret_file.is_file():
            raise ValueError(f"paging_secret_file: {self.paging_secret_file} is not a file")
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file", "tenancy_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path} is not a file")
        for raw in self.token_key_files.split(","):
            if raw.strip() and not Path(raw.strip()).is_file():
                raise ValueError(f"token_key_files: {raw.strip()} is not a file")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file: the certificate and the key go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file: client certificates need TLS (tls_cert_file)")
        if (self.tls_client_cert_mode == "none") != (self.tls_client_ca_file is None):
            raise ValueError(
                "tls_client_cert_mode: set it to optional or required together with "
                "tls_client_ca_file, and to none without it"
            )
        if (self.token_issuer is None) != (self.token_audience is None):
            raise ValueError("token_issuer: the issuer and the audience go together")
        if self.token_issuer is not None and not (
            self.token_jwks_url or self.token_key_files.strip()
        ):
            raise ValueError("token_issuer: tokens need token_jwks_url or token_key_files")
        mode = self.effective_auth_mode
        certificates = self.tls_client_ca_file is not None or bool(self.trusted_proxies.strip())
        if mode in ("mtls", "any", "both") and not certificates:
            if self.auth_mode != "auto":
                raise ValueError(
                    f"auth_mode: {mode} needs tls_client_ca_file, or trusted_proxies that "
                    "forward client certificates (X-Forwarded-Client-Cert)"
                )
        if mode in ("token", "any", "both") and self.token_issuer is None:
            if self.auth_mode != "auto":
                raise ValueError(f"auth_mode: {mode} needs token_issuer")
        return self

    # Derived values -------------------------------------------------------------------

    @property
    def effective_ocloud_id(self) -> str:
        return self.ocloud_id or default_ocloud_id(self.ocloud_name)

    @property
    def effective_global_cloud_id(self) -> str:
        return self.global_cloud_id or self.effective_ocloud_id

    @property
    def effective_service_uri(self) -> str:
        if self.service_uri:
            return self.service_uri
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls_cert_file is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def effective_auth_mode(self) -> Literal["open", "mtls", "token", "any", "both"]:
        """How requests are authenticated; ``open`` when nothing is configured."""
        if self.auth_mode != "auto":
            return self.auth_mode
        mtls = self.tls_client_ca_file is not None
        token = self.token_issuer is not None
        if mtls and token:
            return "any"
        if mtls:
            return "mtls"
        if token:
            return "token"
        return "open"

    @property
    def is_loopback(self) -> bool:
        """Whether the listening address only accepts connections from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def effective_replica_id(self) -> str:
        return self.replica_id or f"{socket.gethostname()}-{os.getpid()}"

    def notification_key(self) -> bytes | None:
        """The global notification signing key, if one is configured."""
        if self.notification_secret_file is not None:
            return self.notification_secret_file.read_bytes().strip()
        if self.notification_secret is not None:
            return self.notification_secret.get_secret_value().encode()
        return None

    def paging_key(self) -> bytes:
        """The paging marker key: from the file, the setting, or fresh random bytes."""
        if self.paging_secret_file is not None:
            return self.paging_secret_file.read_bytes().strip()
        if self.paging_secret is not None:
            return self.paging_secret.get_secret_value().encode()
        return secrets.token_bytes(32)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Init arguments (command-line options, and YAML keys the environment does not
        # set; see load_settings) win over the environment.
        return init_settings, env_settings


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from the environment and the optional YAML file.

    Raises :class:`ConfigError` with a single line naming the first bad key.
    """
    _reject_unknown_environment()
    values: dict[str, Any] = {}
    if config_file is not None:
        in_env = {
            name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
            for name in os.environ
            if name.startswith(ENV_PREFIX)
        }
        values.update(
            (key, value) for key, value in _read_yaml(config_file).items() if key not in in_env
        )
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _reject_unknown_environment() -> None:
    """A misspelt ``NETWEAVE_*`` variable is an error, not a silently ignored setting."""
    known = {name.upper() for name in Settings.model_fields}
    for variable in os.environ:
        if not variable.startswith(ENV_PREFIX):
            continue
        name = variable[len(ENV_PREFIX) :].split("__", 1)[0]
        if name not in known:
            raise ConfigError(f"invalid configuration: {variable}: unknown setting")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"config file {path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping of settings")
    return {str(key).lower(): value for key, value in data.items()}


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    if not loc:  # a check across settings names its setting first: "kubeconfig: ..."
        name, _, rest = message.partition(": ")
        if name in Settings.model_fields and rest:
            loc, message = name, rest
    key = f"{ENV_PREFIX}{loc.upper()} ({loc})" if loc else "settings"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return f"invalid configuration: {key}: {message}{suffix}"
