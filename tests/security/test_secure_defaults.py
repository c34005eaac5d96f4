"""Secure defaults: open only on loopback (and loudly), refused on the network unless insecure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.credentials import AUDIENCE, ISSUER, TokenIssuer
from tests.servers import gateway_processes

from netweave.config import ConfigError, Settings
from netweave.server import check_exposure, exposure_warning


def test_open_on_loopback_is_allowed_with_a_warning() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.8.9.10"):
        settings = Settings(host=host)
        check_exposure(settings)
        warning = exposure_warning(settings)
        assert warning is not None and "SECURITY IS OFF" in warning


def test_open_on_the_network_is_refused_unless_insecure() -> None:
    with pytest.raises(ConfigError, match="NETWEAVE_INSECURE"):
        check_exposure(Settings(host="0.0.0.0"))
    insecure = Settings(host="0.0.0.0", insecure=True)
    check_exposure(insecure)
    assert "THE NETWORK" in (exposure_warning(insecure) or "")


def test_authenticated_gateways_may_listen_anywhere(tmp_path: Path) -> None:
    issuer = TokenIssuer(tmp_path / "key.pem")
    settings = Settings(
        host="0.0.0.0",
        token_issuer=ISSUER,
        token_audience=AUDIENCE,
        token_key_files=str(issuer.key_file),
    )
    check_exposure(settings)
    assert exposure_warning(settings) is None
    assert settings.effective_auth_mode == "token"


def test_serve_refuses_a_network_address_without_authentication() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env.update(NETWEAVE_HOST="0.0.0.0", NETWEAVE_PORT="1")
    done = subprocess.run(
        [sys.executable, "-m", "netweave", "serve"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert b"NETWEAVE_INSECURE" in done.stderr
    assert done.stderr.count(b"\n") == 1  # one line, no traceback


def test_an_open_gateway_says_so_in_its_first_log_line(tmp_path: Path) -> None:
    with gateway_processes(1, tmp_path, access_log="false") as (gateway,):
        first = json.loads(gateway.log.read_text().splitlines()[0])
    assert first["level"] == "warning"
    assert "SECURITY IS OFF" in first["event"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tls_cert_file": "/etc/hostname"}, "go together"),
        ({"tls_cert_file": "/no/such/file", "tls_key_file": "/etc/hostname"}, "is not a file"),
        ({"tls_client_cert_mode": "required"}, "tls_client_cert_mode"),
        ({"token_issuer": ISSUER}, "go together"),
        ({"token_issuer": ISSUER, "token_audience": AUDIENCE}, "token_jwks_url or token_key_files"),
        ({"auth_mode": "mtls"}, "needs tls_client_ca_file"),
        ({"trusted_proxies": "not-an-address"}, "not an address"),
        ({"simulated_pool_owners": {"mad-core": "Not A Tenant"}}, "not a tenant id"),
    ],
)
def test_inconsistent_security_settings_are_one_line_errors(
    settings: dict[str, object], message: str
) -> None:
    from netweave.config import load_settings

    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(**settings)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tenants: [{tenantId: shared, name: x}]", "tenants[0]"),
        ("users: [{tenantId: nowhere, subject: s}]", "users[0]"),
        ("roleBindings: [{subject: s, role: emperor}]", "roleBindings[0]"),
        ("- not a mapping", "tenancy"),
    ],
)
def test_check_config_refuses_a_bad_tenancy_file_in_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "tenancy.yaml"
    path.write_text(content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env["NETWEAVE_TENANCY_FILE"] = str(path)
    done = subprocess.run(
        [sys.executable, "-m", "netweave", "check-config"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2, done.stdout
    assert b"NETWEAVE_TENANCY_FILE" in done.stderr and message.encode() in done.stderr
    assert done.stderr.count(b"\n") == 1
