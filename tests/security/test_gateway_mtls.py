"""The gateway serving mTLS itself, and behind a TLS-terminating proxy.

Real handshakes on loopback with certificates made in the test: no client certificate,
one from another CA, an expired one, one revoked by a client-CA rotation (without a
restart), and the right one, whose URI SAN is the principal the tenancy file knows.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
import yaml
from tests.credentials import NOW, PKI, client_context, issue_client
from tests.servers import RunningGateway, serve_gateway
from tests.waiting import eventually

POOLS = "/o2ims-infrastructureInventory/v1/resourcePools"
SMO_A = "spiffe://smo-a.example.net/ns/o2/sa/client"
OPS = "spiffe://operator.example.net/ops"
TENANCY = {
    "tenants": [{"tenantId": "smo-a", "name": "SMO A"}],
    "users": [{"tenantId": "smo-a", "subject": SMO_A}],
    "roleBindings": [
        {"subject": SMO_A, "role": "tenant-admin", "tenantId": "smo-a"},
        {"subject": OPS, "role": "platform-admin"},
    ],
}
OWNERS = {"mad-ran-edge": "smo-a", "dal-storage": "shared"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mtls")


@pytest.fixture(scope="module")
def tenancy_file(workdir: Path) -> Path:
    path = workdir / "tenancy.yaml"
    path.write_text(yaml.safe_dump(TENANCY))
    return path


@pytest.fixture(scope="module")
def pki(workdir: Path) -> PKI:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    pki = PKI(workdir, server_ca, server_ca.issue_cert("127.0.0.1"), client_ca)
    pki.write_server(server_ca)
    pki.write_client_ca(client_ca)
    return pki


@pytest.fixture(scope="module")
def gateway(pki: PKI, tenancy_file: Path) -> Iterator[RunningGateway]:
    with serve_gateway(
        access_log=False,
        tls_cert_file=pki.cert_file,
        tls_key_file=pki.key_file,
        tls_client_ca_file=pki.client_ca_file,
        tls_client_cert_mode="required",
        tls_reload_interval=0.2,
        tenancy_file=tenancy_file,
        simulated_pool_owners=OWNERS,
    ) as running:
        yield running


def client(
    gateway: RunningGateway, pki: PKI, cert: tuple[bytes, bytes] | None, tmp: Path
) -> httpx.Client:
    context = client_context(pki.server_ca, cert, tmp=tmp)
    return httpx.Client(base_url=gateway.base_url, verify=context, trust_env=False, timeout=5)


def names(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {pool["name"] for pool in response.json()}


def test_the_right_certificate_is_the_principal(
    gateway: RunningGateway, pki: PKI, tmp_path: Path
) -> None:
    smo_a = issue_client(pki.client_ca, "smo-a client", uris=(SMO_A,))
    with client(gateway, pki, smo_a, tmp_path) as http:
        response = http.get(POOLS)
        assert names(response) == {"mad-ran-edge", "dal-storage"}
        assert response.headers["strict-transport-security"].startswith("max-age=")
    ops = issue_client(pki.client_ca, "ops", uris=(OPS,))
    with client(gateway, pki, ops, tmp_path) as http:
        assert len(names(http.get(POOLS))) == 7


def test_a_verified_certificate_nobody_registered_has_no_rights(
    gateway: RunningGateway, pki: PKI, tmp_path: Path
) -> None:
    stranger = issue_client(pki.client_ca, "stranger", dns=("stranger.example.net",))
    with client(gateway, pki, stranger, tmp_path) as http:
        response = http.get(POOLS)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("case", ["no certificate", "another CA", "expired"])
def test_bad_client_certificates_never_reach_the_application(
    gateway: RunningGateway, pki: PKI, tmp_path: Path, case: str
) -> None:
    cert = {
        "no certificate": None,
        "another CA": issue_client(trustme.CA(), "rogue", uris=(SMO_A,)),
        "expired": issue_client(
            pki.client_ca, "old", uris=(SMO_A,), not_after=NOW - dt.timedelta(days=1)
        ),
    }[case]
    requests_before = _requests_served(gateway)
    with (
        client(gateway, pki, cert, tmp_path) as http,
        pytest.raises((httpx.TransportError, ssl.SSLError)),
    ):
        http.get(POOLS)
    assert _requests_served(gateway) == requests_before


def _requests_served(gateway: RunningGateway) -> float:
    metrics = gateway.app.state.metrics
    total = 0.0
    for family in metrics.registry.collect():
        if family.name == "netweave_http_requests":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def test_a_client_ca_rotation_revokes_old_certificates_without_a_restart(
    gateway: RunningGateway, pki: PKI, tmp_path: Path
) -> None:
    old = issue_client(pki.client_ca, "smo-a client", uris=(SMO_A,))
    with client(gateway, pki, old, tmp_path) as http:
        assert http.get(POOLS).status_code == 200
    new_ca = trustme.CA()
    pki.write_client_ca(new_ca)
    renewed = issue_client(new_ca, "smo-a client", uris=(SMO_A,))

    def renewed_works() -> bool:
        try:
            with client(gateway, pki, renewed, tmp_path) as http:
                return http.get(POOLS).status_code == 200
        except (httpx.TransportError, ssl.SSLError):
            return False

    eventually(renewed_works, timeout=10)
    with (
        client(gateway, pki, old, tmp_path) as http,
        pytest.raises((httpx.TransportError, ssl.SSLError)),
    ):
        http.get(POOLS)


# --------------------------------------------------------------------------- behind a proxy


def _xfcc(uri: str) -> str:
    return f'By=spiffe://gateway.example.net;Hash={"ab" * 32};Subject="CN=smo-a client";URI={uri}'


@pytest.mark.parametrize("trusted", [True, False])
def test_forwarded_client_certificates_count_only_from_trusted_proxies(
    tenancy_file: Path, trusted: bool
) -> None:
    with (
        serve_gateway(
            access_log=False,
            auth_mode="mtls",
            trusted_proxies="127.0.0.1" if trusted else "10.11.12.13",
            tenancy_file=tenancy_file,
            simulated_pool_owners=OWNERS,
        ) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False) as http,
    ):
        response = http.get(POOLS, headers={"X-Forwarded-Client-Cert": _xfcc(SMO_A)})
        if trusted:
            assert names(response) == {"mad-ran-edge", "dal-storage"}
        else:
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("ClientCertificate")
        # without the header nobody is authenticated either way
        assert http.get(POOLS).status_code == 401


def test_a_forwarded_certificate_counts_with_x_forwarded_for_too(tenancy_file: Path) -> None:
    """A mesh sends both headers: the client address it forwards must not make the proxy
    itself look untrusted."""
    with (
        serve_gateway(
            access_log=False,
            auth_mode="mtls",
            trusted_proxies="127.0.0.1",
            tenancy_file=tenancy_file,
            simulated_pool_owners=OWNERS,
        ) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False) as http,
    ):
        headers = {
            "X-Forwarded-Client-Cert": _xfcc(SMO_A),
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
        }
        assert names(http.get(POOLS, headers=headers)) == {"mad-ran-edge", "dal-storage"}
        # the audit trail records the forwarded client address, not the proxy's
        created = http.post(
            "/o2ims/v1/tenants", json={"tenantId": "x", "name": "x"}, headers=headers
        )
        assert created.status_code == 403  # a tenant admin manages no tenants
    with (
        serve_gateway(
            access_log=False,
            auth_mode="mtls",
            trusted_proxies="127.0.0.1",
            tenancy_file=tenancy_file,
        ) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False) as http,
    ):
        ops = "spiffe://operator.example.net/ops"
        headers = {"X-Forwarded-Client-Cert": _xfcc(ops), "X-Forwarded-For": "198.51.100.9"}
        http.post("/o2ims/v1/tenants", json={"tenantId": "y", "name": "y"}, headers=headers)
        found = http.get(
            "/o2ims/v1/audit/events",
            params={"filter": "(eq,action,tenants:create)"},
            headers=headers,
        ).json()["items"]
        assert [e["sourceAddress"] for e in found] == ["198.51.100.9"]
