"""Serving the application: uvicorn with netweave's TLS, and the secure-default checks.

``netweave serve`` and the test harness both build their server here, so what is
tested is what runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from netweave.config import ConfigError, Settings
from netweave.security.tls import ClientCertMode, GatewayServer, GatewayServerConfig, TLSConfig

__all__ = ["build_server", "check_exposure", "exposure_warning", "tls_config"]


def tls_config(settings: Settings) -> TLSConfig | None:
    """The TLS files of the settings, or None to serve plain HTTP."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return TLSConfig(
        cert_file=settings.tls_cert_file,
        key_file=settings.tls_key_file,
        client_ca_file=settings.tls_client_ca_file,
        client_cert_mode=ClientCertMode(settings.tls_client_cert_mode),
        reload_interval=settings.tls_reload_interval,
    )


def check_exposure(settings: Settings) -> None:
    """Refuse to serve a non-loopback address without authentication, unless told to.

    Raises :class:`ConfigError` naming ``NETWEAVE_INSECURE``.
    """
    if (
        settings.effective_auth_mode == "open"
        and not settings.is_loopback
        and not settings.insecure
    ):
        raise ConfigError(
            f"invalid configuration: NETWEAVE_HOST (host): {settings.host} is not a loopback "
            "address and no authentication is configured (tls_client_ca_file or token_issuer); "
            "set NETWEAVE_INSECURE=true to serve it open anyway"
        )


def exposure_warning(settings: Settings) -> str | None:
    """The loud line an open gateway logs first, or None when requests are authenticated."""
    if settings.effective_auth_mode != "open":
        return None
    where = "this machine only" if settings.is_loopback else "THE NETWORK (NETWEAVE_INSECURE=true)"
    return (
        f"SECURITY IS OFF: no authentication is configured; every request to {where} "
        "acts as platform-admin"
    )


def build_server(app: FastAPI, settings: Settings, **options: Any) -> GatewayServer:
    """A uvicorn server for ``app`` on the settings' address, with TLS when configured."""
    options.setdefault("log_config", None)
    options.setdefault("access_log", False)
    options.setdefault("server_header", False)
    options.setdefault("lifespan", "on")
    # X-Forwarded-* are applied by the request-context middleware, which keeps the
    # direct peer (a forwarded client certificate counts only from a trusted proxy)
    options.setdefault("proxy_headers", False)
    config = GatewayServerConfig(
        app, host=settings.host, port=settings.port, tls=tls_config(settings), **options
    )
    return GatewayServer(config)
