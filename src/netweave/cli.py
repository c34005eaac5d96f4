"""The ``netweave`` command: serve, check-config, operator, version."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from netweave import __version__
from netweave.config import ConfigError, Settings, load_settings

app = typer.Typer(
    name="netweave",
    help="netweave: the O-RAN O2-IMS gateway. Settings come from NETWEAVE_* variables "
    "and an optional YAML file (--config); variables win.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML file of settings (keys without the NETWEAVE_ prefix)."
    ),
]


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"netweave: {exc}", err=True)
        raise typer.Exit(code=2) from None


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (NETWEAVE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (NETWEAVE_PORT).")] = None,
) -> None:
    """Start the gateway (uvicorn, one worker)."""
    from netweave.app import create_app
    from netweave.observability.logging import configure_logging, get_logger
    from netweave.server import build_server, check_exposure, exposure_warning

    settings = _settings(config, host=host, port=port)
    try:
        check_exposure(settings)
    except ConfigError as exc:
        typer.echo(f"netweave: {exc}", err=True)
        raise typer.Exit(code=2) from None
    _check_backend(settings)
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    log = get_logger("netweave")
    warning = exposure_warning(settings)
    if warning is not None:
        log.warning(warning, auth_mode="open", listen=f"{settings.host}:{settings.port}")
    log.info(
        "netweave starting",
        version=__version__,
        backend=settings.backend,
        store="redis" if settings.redis_url else "memory",
        listen=f"{settings.host}:{settings.port}",
        tls=settings.tls_cert_file is not None,
        auth_mode=settings.effective_auth_mode,
        ocloud_id=settings.effective_ocloud_id,
        service_uri=settings.effective_service_uri,
    )
    server = build_server(create_app(settings), settings, loop="uvloop")
    server.run()


def _check_backend(settings: Settings) -> None:
    """Fail fast, in one line, on a configuration that cannot work: a kubeconfig, the
    token settings or the tenancy file."""
    import asyncio

    from netweave.adapters.registry import build_adapter
    from netweave.security.setup import check_security

    try:
        check_security(settings)
        adapter = build_adapter(settings)
    except ConfigError as exc:
        typer.echo(f"netweave: {exc}", err=True)
        raise typer.Exit(code=2) from None
    asyncio.run(adapter.aclose())


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the configuration and print the effective settings (secrets masked)."""
    settings = _settings(config)
    _check_backend(settings)
    from netweave.server import check_exposure

    try:
        check_exposure(settings)
    except ConfigError as exc:
        typer.echo(f"netweave: {exc}", err=True)
        raise typer.Exit(code=2) from None
    shown = settings.model_dump(mode="json")
    shown["effective_ocloud_id"] = settings.effective_ocloud_id
    shown["effective_global_cloud_id"] = settings.effective_global_cloud_id
    shown["effective_service_uri"] = settings.effective_service_uri
    for key, value in sorted(shown.items()):
        typer.echo(f"{key}: {value}")
    typer.echo("configuration OK")


@app.command()
def operator(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)."),
    ] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context to use.")] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Watch only this namespace (repeatable)."),
    ] = None,
    liveness: Annotated[
        str | None, typer.Option(help="Liveness endpoint, e.g. http://0.0.0.0:8081/healthz.")
    ] = None,
    log_format: Annotated[str, typer.Option(help="json or plain.")] = "json",
) -> None:
    """Run the operator: reconcile O2IMSGateway resources into gateways (kopf, the
    'operator' extra). See docs/deployment.md, section 10."""
    import asyncio
    import logging

    try:
        import kopf

        from netweave.operator import OperatorConfig, run
    except ImportError as exc:
        typer.echo(f"netweave: the operator needs the 'operator' extra ({exc})", err=True)
        raise typer.Exit(code=2) from None
    if log_format not in ("json", "plain"):
        typer.echo("netweave: --log-format: json or plain", err=True)
        raise typer.Exit(code=2)
    kopf.configure(log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per request otherwise
    config = OperatorConfig(
        version=__version__,
        kubeconfig=kubeconfig,
        context=context,
        namespaces=tuple(namespace or ()),
        liveness_endpoint=liveness,
    )
    from lightkube.core.exceptions import ConfigError as KubeConfigError

    try:
        asyncio.run(run(config))
    except (KubeConfigError, ValueError, OSError) as exc:  # no usable kubeconfig
        typer.echo(f"netweave: {exc}", err=True)
        raise typer.Exit(code=2) from None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"netweave {__version__} (python {sys.version.split()[0]})")


def main() -> None:
    app()
