"""TLS and mTLS in the gateway: real handshakes on loopback, certificates made by trustme."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import math
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from tests.credentials import (
    NOW,
    PKI,
    SPIFFE,
    client_context,
    der_of,
    issue_client,
    write_atomically,
)

from netweave.security.tls import (
    PEER_SCOPE_KEY,
    ClientCertMode,
    GatewayServer,
    GatewayServerConfig,
    PeerCertHttpToolsProtocol,
    PeerIdentity,
    ReloadingContext,
    TLSConfig,
    build_server_context,
    peer_from_forwarded_header,
    peer_identity_from_der,
    trusted_proxy,
)


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    pki = PKI(tmp_path, server_ca, server_ca.issue_cert("127.0.0.1"), client_ca)
    pki.write_server(server_ca)
    pki.write_client_ca(client_ca)
    return pki


# --------------------------------------------------------------------------- the server


class EchoApp:
    """Answers every request with the peer identity and TLS extension it saw."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.requests += 1
        peer = scope.get(PEER_SCOPE_KEY)
        tls = scope.get("extensions", {}).get("tls")
        body = {
            "peer": asdict(peer) if peer is not None else None,
            "has_peer_key": PEER_SCOPE_KEY in scope,
            "tls": tls,
            "client_port": scope["client"][1],
            "scheme": scope["scheme"],
        }
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Running:
    app: EchoApp
    server: GatewayServer
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"


@contextlib.contextmanager
def serve(
    tls: TLSConfig | ReloadingContext | None, *, loop: str = "asyncio", **kwargs: Any
) -> Iterator[Running]:
    app = EchoApp()
    port = free_port()
    config = GatewayServerConfig(
        app,
        tls=tls,
        host="127.0.0.1",
        port=port,
        loop=loop,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=30,
        **kwargs,
    )
    server = GatewayServer(config)
    thread = threading.Thread(target=server.run, name=f"tls-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield Running(app, server, thread, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def get(
    url: str, ctx: ssl.SSLContext | None = None, client: httpx.Client | None = None
) -> dict[str, Any]:
    """GET on a fresh connection made with ``ctx``, or through ``client``."""
    if client is not None:
        response = client.get(url)
    else:
        with httpx.Client(verify=ctx or True, timeout=5) as fresh:
            response = fresh.get(url)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def presented_cert(port: int) -> bytes:
    """The DER certificate the server presents to a new connection."""
    ctx = client_context(None, tmp=Path("/nonexistent"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def reloading(pki: PKI, mode: ClientCertMode) -> ReloadingContext:
    return ReloadingContext(
        pki.cert_file, pki.key_file, client_ca_file=pki.client_ca_file, mode=mode
    )


# --------------------------------------------------------------------------- modes


@pytest.fixture
def smo_cert(pki: PKI) -> tuple[bytes, bytes]:
    return issue_client(
        pki.client_ca,
        "smo-1",
        dns=("smo-1.example.net",),
        uris=(SPIFFE,),
        emails=("ops@example.net",),
    )


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_required_mode_admits_only_valid_client_certs(
    pki: PKI, smo_cert: tuple[bytes, bytes], tmp_path: Path, loop: str
) -> None:
    expired = issue_client(pki.client_ca, "old", not_after=NOW - dt.timedelta(days=1))
    foreign = issue_client(pki.rogue_ca, "smo-1")
    with serve(reloading(pki, ClientCertMode.REQUIRED), loop=loop) as running:
        for cert in (None, foreign, expired):
            with pytest.raises(httpx.TransportError):
                get(running.url, client_context(pki.server_ca, cert, tmp=tmp_path))
        assert running.app.requests == 0  # none of them reached the application

        body = get(running.url, client_context(pki.server_ca, smo_cert, tmp=tmp_path))
        assert running.app.requests == 1
    peer = body["peer"]
    assert peer["subject"] == "CN=smo-1,O=Example SMO"
    assert peer["common_name"] == "smo-1"
    assert peer["dns_sans"] == ["smo-1.example.net"]
    assert peer["uri_sans"] == [SPIFFE]
    assert peer["email_sans"] == ["ops@example.net"]
    assert (
        peer["fingerprint_sha256"]
        == x509.load_pem_x509_certificate(smo_cert[0]).fingerprint(hashes.SHA256()).hex()
    )
    tls = body["tls"]
    assert [der_of(pem.encode()) for pem in tls["client_cert_chain"]] == [der_of(smo_cert[0])]
    assert tls["client_cert_name"] == "CN=smo-1,O=Example SMO"
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert isinstance(tls["cipher_suite"], int) and 0 < tls["cipher_suite"] <= 0xFFFF
    assert body["scheme"] == "https"


def test_optional_mode_admits_anonymous_clients_without_a_peer(
    pki: PKI, smo_cert: tuple[bytes, bytes], tmp_path: Path
) -> None:
    with serve(reloading(pki, ClientCertMode.OPTIONAL)) as running:
        anonymous = get(running.url, client_context(pki.server_ca, tmp=tmp_path))
        assert anonymous["peer"] is None and anonymous["has_peer_key"]
        assert anonymous["tls"]["client_cert_chain"] == []

        named = get(running.url, client_context(pki.server_ca, smo_cert, tmp=tmp_path))
        assert named["peer"]["common_name"] == "smo-1"

        foreign = issue_client(pki.rogue_ca, "smo-1")  # sent but unverifiable: refused
        with pytest.raises(httpx.TransportError):
            get(running.url, client_context(pki.server_ca, foreign, tmp=tmp_path))
        assert running.app.requests == 2


def test_none_mode_never_asks_for_a_client_cert(
    pki: PKI, smo_cert: tuple[bytes, bytes], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = build_server_context(pki.cert_file, pki.key_file)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    with serve(ReloadingContext(pki.cert_file, pki.key_file)) as running:
        body = get(running.url, client_context(pki.server_ca, smo_cert, tmp=tmp_path))
    assert f"Uvicorn running on https://127.0.0.1:{running.port}" in caplog.text
    assert body["peer"] is None
    assert body["tls"]["client_cert_chain"] == []


def test_context_modes_and_validation(pki: PKI) -> None:
    for mode, expected in [
        (ClientCertMode.OPTIONAL, ssl.CERT_OPTIONAL),
        (ClientCertMode.REQUIRED, ssl.CERT_REQUIRED),
    ]:
        ctx = build_server_context(
            pki.cert_file, pki.key_file, client_ca_file=pki.client_ca_file, mode=mode
        )
        assert ctx.verify_mode == expected
    with pytest.raises(ValueError, match="client CA"):
        build_server_context(pki.cert_file, pki.key_file, mode=ClientCertMode.REQUIRED)
    with pytest.raises(ssl.SSLError):
        build_server_context(pki.key_file, pki.key_file)
    assert ClientCertMode("required") is ClientCertMode.REQUIRED


def test_plain_http_has_no_tls_extension(tmp_path: Path) -> None:
    with serve(None, http=PeerCertHttpToolsProtocol) as running:
        response = httpx.get(f"http://127.0.0.1:{running.port}/", timeout=5)
    body = response.json()
    assert body["tls"] is None and not body["has_peer_key"]
    assert body["scheme"] == "http"


# --------------------------------------------------------------------------- rotation


def test_rotated_server_cert_is_served_to_new_connections_only(
    pki: PKI, smo_cert: tuple[bytes, bytes], tmp_path: Path
) -> None:
    tls = reloading(pki, ClientCertMode.REQUIRED)
    old_ca, old_leaf = pki.server_ca, pki.server_cert
    with serve(tls) as running:
        assert presented_cert(running.port) == der_of(old_leaf.cert_chain_pems[0].bytes())
        keep_alive = httpx.Client(verify=client_context(old_ca, smo_cert, tmp=tmp_path), timeout=5)
        with keep_alive:
            first = get(running.url, client=keep_alive)
            assert tls.maybe_reload() is False  # nothing changed yet

            new_leaf = pki.write_server(trustme.CA())
            assert tls.maybe_reload() is True
            assert tls.reloads == 1

            assert presented_cert(running.port) == der_of(new_leaf.cert_chain_pems[0].bytes())
            fresh = get(running.url, client_context(pki.server_ca, smo_cert, tmp=tmp_path))
            assert fresh["peer"]["common_name"] == "smo-1"
            with pytest.raises(httpx.ConnectError):  # the old CA no longer vouches for it
                get(running.url, client_context(old_ca, smo_cert, tmp=tmp_path))

            again = get(running.url, client=keep_alive)
            assert again["client_port"] == first["client_port"]  # same connection, not dropped
        assert running.thread.is_alive() and running.server.started
        assert running.app.requests == 3


def test_client_ca_rotation_revokes_the_old_ca(
    pki: PKI, smo_cert: tuple[bytes, bytes], tmp_path: Path
) -> None:
    tls = reloading(pki, ClientCertMode.REQUIRED)
    with serve(tls) as running:
        get(running.url, client_context(pki.server_ca, smo_cert, tmp=tmp_path))

        new_ca = trustme.CA()
        pki.write_client_ca(new_ca)
        assert tls.maybe_reload() is True

        with pytest.raises(httpx.TransportError):  # revoked by rotation
            get(running.url, client_context(pki.server_ca, smo_cert, tmp=tmp_path))
        renewed = issue_client(new_ca, "smo-1")
        body = get(running.url, client_context(pki.server_ca, renewed, tmp=tmp_path))
        assert body["peer"]["common_name"] == "smo-1"
        assert running.app.requests == 2


def test_sessions_are_not_resumed_past_a_client_ca_rotation(
    pki: PKI, smo_cert: tuple[bytes, bytes], tmp_path: Path
) -> None:
    """A resumed TLS session skips client-cert verification: none from before a reload."""
    tls = reloading(pki, ClientCertMode.REQUIRED)
    ctx = client_context(pki.server_ca, smo_cert, tmp=tmp_path)
    # sessions are timed to the second: one from the second of a reload is refused too
    time.sleep(math.ceil(tls.current.built_at) - time.time() + 0.01)  # type: ignore[attr-defined]

    def request(session: ssl.SSLSession | None) -> tuple[bytes, ssl.SSLSession | None, bool]:
        with (
            socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as conn,
        ):
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            return data, conn.session, conn.session_reused

    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx.maximum_version = version
        with serve(tls) as running:
            data, session, _ = request(None)
            assert data.startswith(b"HTTP/1.1 200")
            data, session, reused = request(session)
            assert data.startswith(b"HTTP/1.1 200")
            # TLS 1.3: no tickets, so no resumption; TLS 1.2 resumes by session id
            assert reused == (version is ssl.TLSVersion.TLSv1_2)

            original = pki.client_ca
            pki.write_client_ca(trustme.CA())
            assert tls.maybe_reload()
            try:
                data, _, _ = request(session)
            except (ssl.SSLError, OSError):  # refused during or right after the handshake
                data = b""
            assert data == b""
            assert running.app.requests == 2
        pki.write_client_ca(original)  # for the next TLS version
        assert tls.maybe_reload()


def test_broken_rotation_keeps_the_old_context(
    pki: PKI, smo_cert: tuple[bytes, bytes], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tls = reloading(pki, ClientCertMode.REQUIRED)
    old_der = der_of(pki.server_cert.cert_chain_pems[0].bytes())
    with serve(tls) as running:
        # garbage in the certificate file
        write_atomically(pki.cert_file, b"-----BEGIN CERTIFICATE-----\nnope\n")
        with caplog.at_level(logging.ERROR, logger="netweave.security.tls"):
            assert tls.maybe_reload() is False
        assert "do not load" in caplog.text
        assert tls.failures == 1
        assert tls.maybe_reload() is False and tls.failures == 1  # not retried until a change
        assert presented_cert(running.port) == old_der
        get(running.url, client_context(pki.server_ca, smo_cert, tmp=tmp_path))

        # half a rotation: the new certificate, but still the old key
        new_ca = trustme.CA()
        new_leaf = new_ca.issue_cert("127.0.0.1")
        write_atomically(pki.cert_file, new_leaf.cert_chain_pems[0].bytes())
        assert tls.maybe_reload() is False and tls.failures == 2
        assert presented_cert(running.port) == old_der

        # a missing file (mid-rotation) is not fatal either
        pki.key_file.unlink()
        assert tls.maybe_reload() is False
        assert presented_cert(running.port) == old_der

        # the rotation completes
        write_atomically(pki.key_file, new_leaf.private_key_pem.bytes())
        assert tls.maybe_reload() is True
        assert presented_cert(running.port) == der_of(new_leaf.cert_chain_pems[0].bytes())
        assert running.app.requests == 1


def test_the_server_polls_for_rotated_files(pki: PKI, tmp_path: Path) -> None:
    config = TLSConfig(
        pki.cert_file,
        pki.key_file,
        client_ca_file=pki.client_ca_file,
        client_cert_mode=ClientCertMode.OPTIONAL,
        reload_interval=0.05,
    )
    with serve(config) as running:
        get(running.url, client_context(pki.server_ca, tmp=tmp_path))
        new_leaf = pki.write_server(trustme.CA())
        expected = der_of(new_leaf.cert_chain_pems[0].bytes())
        deadline = time.monotonic() + 5
        while presented_cert(running.port) != expected:
            assert time.monotonic() < deadline, "the rotated certificate was never served"
            time.sleep(0.05)
        get(running.url, client_context(pki.server_ca, tmp=tmp_path))
        assert running.thread.is_alive()


# --------------------------------------------------------------------------- behind a proxy


def test_forwarded_header_without_cert() -> None:
    digest = "ab" * 32
    header = (
        "By=spiffe://cluster.local/ns/o2ims/sa/netweave;Hash=" + digest.upper() + ";"
        'Subject="CN=smo-1,OU=Ops\\; Team\\, Dept,O=Example SMO";'
        f"URI={SPIFFE};DNS=smo-1.example.net;DNS=alt.example.net"
    )
    assert peer_from_forwarded_header(header) == PeerIdentity(
        subject="CN=smo-1,OU=Ops\\; Team\\, Dept,O=Example SMO",
        common_name="smo-1",
        dns_sans=("smo-1.example.net", "alt.example.net"),
        uri_sans=(SPIFFE,),
        email_sans=(),
        fingerprint_sha256=digest,
    )
    only_uri = peer_from_forwarded_header(f"URI={SPIFFE}")
    assert only_uri is not None and only_uri.uri_sans == (SPIFFE,)
    assert only_uri.common_name is None and only_uri.subject == ""


def test_forwarded_header_with_cert(pki: PKI, smo_cert: tuple[bytes, bytes]) -> None:
    expected = peer_identity_from_der(der_of(smo_cert[0]))
    encoded = urllib.parse.quote(smo_cert[0].decode(), safe="")
    digest = expected.fingerprint_sha256
    header = f'By=spiffe://a;Hash={digest};Cert="{encoded}";Subject="CN=ignored";URI={SPIFFE}'
    assert peer_from_forwarded_header(header) == expected
    assert expected.subject == "CN=smo-1,O=Example SMO"
    assert expected.uri_sans == (SPIFFE,)

    # several hops: the last element is the one our (trusted) proxy added
    chained = f"By=spiffe://x;URI=spiffe://upstream/evil,{header}"
    assert peer_from_forwarded_header(chained) == expected
    assert peer_from_forwarded_header(f"{header},URI=spiffe://last") == PeerIdentity(
        "", None, (), ("spiffe://last",), (), ""
    )
    # a certificate that does not match its hash is refused
    wrong = header.replace(f"Hash={digest}", "Hash=" + "0" * 64)
    assert peer_from_forwarded_header(wrong) is None


@pytest.mark.parametrize(
    "header",
    [
        "",
        " , ",
        "By=spiffe://a",
        "Hash=" + "ab" * 32,
        'Subject="CN=unterminated',
        "URI",
        "Subject=CN=x;Hash=nothex",
        'Cert="-----BEGIN%20CERTIFICATE-----%0Agarbage%0A-----END%20CERTIFICATE-----%0A"',
    ],
)
def test_forwarded_header_malformed(header: str) -> None:
    assert peer_from_forwarded_header(header) is None


def test_trusted_proxy() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    assert trusted_proxy("10.1.2.3", proxies)
    assert trusted_proxy("fd00::1", proxies)
    assert trusted_proxy("::ffff:10.9.9.9", proxies)  # IPv4-mapped, from a dual-stack socket
    assert not trusted_proxy("11.0.0.1", proxies)
    assert not trusted_proxy("fe80::1", proxies)
    assert not trusted_proxy("testclient", proxies)
    assert not trusted_proxy("", proxies)
    assert not trusted_proxy("10.1.2.3", [])


# --------------------------------------------------------------------------- write coalescing


class _Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_writes_of_one_loop_iteration_become_one() -> None:
    import asyncio

    from netweave.security.tls import CoalescingTransport

    sink = _Sink()
    transport = CoalescingTransport(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(memoryview(b"body"))
    assert sink.writes == []
    await asyncio.sleep(0)
    assert sink.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.writelines([b"a", b"b"])
    transport.close()  # flushes before closing
    assert sink.writes[-1] == b"ab" and sink.closed
    assert transport.get_extra_info("peername") == "info:peername"
    await asyncio.sleep(0)
    assert len(sink.writes) == 2  # the scheduled flush found nothing left
