"""TLS and mTLS in the gateway itself.

* :func:`build_server_context` builds a server-side :class:`ssl.SSLContext` (TLS 1.2+) with a
  client-certificate mode (:class:`ClientCertMode`).
* :class:`ReloadingContext` reloads certificate, key and client CA when their files change
  (cert-manager rotates them) without restarting the server.  uvicorn hands one fixed
  ``SSLContext`` to ``loop.create_server``; that *listening* context never changes, but its
  ``sni_callback`` (which OpenSSL runs on every ClientHello, with or without SNI) switches each
  new handshake to the freshest context.  Re-loading files into one context in place would not
  be enough: ``load_verify_locations`` only *adds* CAs, so a client CA removed by a rotation
  would stay trusted.  Established connections keep the context they were made with.
* :class:`PeerCertHttpToolsProtocol` puts the verified client certificate into the ASGI scope
  (the ``tls`` extension, and a parsed :class:`PeerIdentity` under ``scope["netweave.peer"]``).
* :class:`GatewayServerConfig` / :class:`GatewayServer` wire the above into uvicorn.
* :func:`peer_from_forwarded_header` and :func:`trusted_proxy` handle a TLS-terminating proxy
  or mesh (Envoy / Istio ``X-Forwarded-Client-Cert``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import math
import os
import ssl
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "PEER_SCOPE_KEY",
    "ClientCertMode",
    "GatewayServer",
    "GatewayServerConfig",
    "PeerCertHttpToolsProtocol",
    "PeerIdentity",
    "ReloadingContext",
    "TLSConfig",
    "build_server_context",
    "peer_from_forwarded_header",
    "peer_identity_from_der",
    "tls_scope_extension",
    "trusted_proxy",
]

logger = logging.getLogger("netweave.security.tls")

#: Key of the parsed peer identity in the ASGI scope (absent on plain-HTTP connections).
PEER_SCOPE_KEY = "netweave.peer"

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class ClientCertMode(StrEnum):
    """Whether the server asks for, and insists on, a client certificate."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


_VERIFY_MODES = {
    ClientCertMode.NONE: ssl.CERT_NONE,
    ClientCertMode.OPTIONAL: ssl.CERT_OPTIONAL,
    ClientCertMode.REQUIRED: ssl.CERT_REQUIRED,
}


class _StampedContext(ssl.SSLContext):
    """An ``SSLContext`` that remembers when it was built (see :func:`session_predates_context`)."""

    built_at: float


def build_server_context(
    cert_file: Path,
    key_file: Path,
    *,
    client_ca_file: Path | None = None,
    mode: ClientCertMode = ClientCertMode.NONE,
) -> ssl.SSLContext:
    """A server-side TLS 1.2+ context; raises ``OSError``/``ssl.SSLError`` on bad files.

    With ``optional`` or ``required`` a client certificate, when sent, must chain to a CA in
    ``client_ca_file`` and be within its validity period, or the handshake fails; with
    ``required`` a client that sends none fails the handshake too (the app never sees it).
    """
    mode = ClientCertMode(mode)
    if mode is not ClientCertMode.NONE and client_ca_file is None:
        raise ValueError(f"client certificate mode {mode.value!r} needs a client CA file")
    ctx = _StampedContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.built_at = time.time()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(certfile=os.fspath(cert_file), keyfile=os.fspath(key_file))
    if mode is not ClientCertMode.NONE:
        assert client_ca_file is not None
        ctx.load_verify_locations(cafile=os.fspath(client_ca_file))
        # A resumed session skips client-certificate verification, so a client whose CA a
        # rotation removed could come back in on an old session.  No tickets (TLS 1.3 then
        # has no resumption at all); TLS 1.2 session-ID resumption cannot be switched off
        # from Python, so the protocol refuses sessions older than the context instead
        # (:func:`session_predates_context`).
        ctx.options |= ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    ctx.verify_mode = _VERIFY_MODES[mode]
    return ctx


# --------------------------------------------------------------------------- reloading


def _file_digest(path: Path) -> bytes:
    # The content, not mtime/size: an in-place rewrite within one timestamp tick, or a new
    # certificate of the same length, is still seen; a mere touch does not rebuild.
    # ``read_bytes`` follows symlinks, as a Kubernetes secret volume's ``..data`` swap needs.
    return hashlib.sha256(path.read_bytes()).digest()


class ReloadingContext:
    """Serves the freshest context built from certificate, key and client-CA files.

    :attr:`context` is the fixed listening context to hand to the server; :attr:`current` is
    the context new handshakes use.  :meth:`maybe_reload` rebuilds it when any file's content
    changed; a file that does not load keeps the previous context (logged as an
    error, and retried when the files change again).
    """

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        *,
        client_ca_file: Path | None = None,
        mode: ClientCertMode = ClientCertMode.NONE,
    ) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.client_ca_file = Path(client_ca_file) if client_ca_file is not None else None
        self.mode = ClientCertMode(mode)
        self.reloads = 0  # successful reloads since start
        self.failures = 0  # rotations that did not load
        signature = self._signature()  # before loading: a change while loading is seen later
        self._current = self._build()
        self._signature_seen = signature
        self._listening = self._build()
        self._listening.sni_callback = self._select_context

    @property
    def files(self) -> tuple[Path, ...]:
        extra = (self.client_ca_file,) if self._uses_ca else ()
        return (self.cert_file, self.key_file, *extra)

    @property
    def _uses_ca(self) -> bool:
        return self.mode is not ClientCertMode.NONE and self.client_ca_file is not None

    @property
    def context(self) -> ssl.SSLContext:
        """The listening context (never replaced; give it to ``create_server``)."""
        return self._listening

    @property
    def current(self) -> ssl.SSLContext:
        """The context new handshakes are switched to."""
        return self._current

    def _build(self) -> ssl.SSLContext:
        return build_server_context(
            self.cert_file,
            self.key_file,
            client_ca_file=self.client_ca_file if self._uses_ca else None,
            mode=self.mode,
        )

    def _signature(self) -> tuple[bytes, ...]:
        return tuple(_file_digest(path) for path in self.files)

    def _select_context(
        self, ssl_object: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None, _ctx: Any
    ) -> None:
        current = self._current
        if ssl_object.context is not current:
            ssl_object.context = current

    def maybe_reload(self) -> bool:
        """Rebuild the context if a file changed; True when a new context was installed."""
        try:
            signature = self._signature()
        except OSError as exc:  # a file briefly missing mid-rotation: try again next time
            logger.error("TLS files not readable, keeping the current certificate: %s", exc)
            return False
        if signature == self._signature_seen:
            return False
        self._signature_seen = signature
        try:
            fresh = self._build()
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.failures += 1
            logger.error(
                "TLS files changed but do not load, keeping the current certificate: %s", exc
            )
            return False
        self._current = fresh
        self.reloads += 1
        logger.info("TLS certificate, key and client CA reloaded from %s", self.cert_file)
        return True

    async def run(self, interval: float = 10.0) -> None:
        """Poll the files every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.maybe_reload()
            except Exception:  # never let the poller die
                logger.exception("TLS reload failed")


# --------------------------------------------------------------------------- peer identity


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """The verified client certificate, as the principal of a connection."""

    subject: str  # RFC 4514
    common_name: str | None
    dns_sans: tuple[str, ...]
    uri_sans: tuple[str, ...]
    email_sans: tuple[str, ...]
    fingerprint_sha256: str  # lowercase hex of the DER certificate
    ip_sans: tuple[str, ...] = ()


def _identity_from_cert(cert: x509.Certificate) -> PeerIdentity:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = cns[0].value if cns else None
    dns: list[str] = []
    uris: list[str] = []
    emails: list[str] = []
    ips: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        emails = san.get_values_for_type(x509.RFC822Name)
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return PeerIdentity(
        subject=cert.subject.rfc4514_string(),
        common_name=common_name if isinstance(common_name, str) else None,
        dns_sans=tuple(dns),
        uri_sans=tuple(uris),
        email_sans=tuple(emails),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        ip_sans=tuple(ips),
    )


def peer_identity_from_der(der: bytes) -> PeerIdentity:
    """Parse a DER certificate into a :class:`PeerIdentity` (raises ``ValueError``)."""
    return _identity_from_cert(x509.load_der_x509_certificate(der))


def tls_scope_extension(
    ssl_object: ssl.SSLObject | ssl.SSLSocket,
) -> tuple[dict[str, Any], PeerIdentity | None]:
    """The ASGI ``tls`` scope extension and the peer identity of an established connection.

    Only a certificate the handshake verified is returned: with mode ``none`` the server does
    not ask for one, otherwise a certificate that does not verify fails the handshake.
    """
    der = ssl_object.getpeercert(binary_form=True)
    peer = peer_identity_from_der(der) if der else None
    version = ssl_object.version()
    cipher = ssl_object.cipher()
    extension: dict[str, Any] = {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": peer.subject if peer else None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version) if version else None,
        "cipher_suite": _cipher_suite_id(ssl_object.context, cipher[0]) if cipher else None,
    }
    return extension, peer


def _cipher_suite_id(ctx: ssl.SSLContext, name: str) -> int | None:
    for cipher in ctx.get_ciphers():
        if cipher["name"] == name:
            return int(cipher["id"]) & 0xFFFF  # OpenSSL ids are 0x0300xxxx; xxxx is IANA's
    return None


def session_predates_context(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> bool:
    """Whether a client-verified connection resumed a session from before the last reload.

    Such a session's client certificate was verified against the CA of that time, which a
    rotation may have removed; the connection must not be served.  (Sessions are timed to
    the second, so one made in the second of a reload is refused too: the safe side.)
    """
    ctx = ssl_object.context
    if not ssl_object.session_reused or ctx.verify_mode == ssl.CERT_NONE:
        return False
    session = ssl_object.session
    built_at: float | None = getattr(ctx, "built_at", None)
    if session is None or built_at is None:
        return True
    created: int = session.time
    return created < math.ceil(built_at)


class CoalescingTransport:
    """A transport that joins the writes of one event-loop iteration into one.

    uvicorn writes a response's head and its body separately; over TLS every write is a
    record to encrypt and a send to make, so joining them (flushed at the end of the
    loop iteration, before anything else can be written) makes one of each.  Everything
    but ``write`` goes to the wrapped transport; ``close`` flushes first.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class PeerCertHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the ASGI ``tls`` extension on TLS connections.

    The handshake is complete when ``connection_made`` runs, so the peer certificate is read
    once per connection; every request's scope (created in ``on_message_begin``) gets a copy.
    """

    _tls_extension: dict[str, Any] | None = None
    _extensions: dict[str, Any] | None = None
    _peer: PeerIdentity | None = None

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        if session_predates_context(ssl_object):
            logger.warning("refused a TLS session resumed from before the last certificate reload")
            transport.abort()
            return
        self._tls_extension, self._peer = tls_scope_extension(ssl_object)
        self.transport = cast(asyncio.Transport, CoalescingTransport(transport, self.loop))
        self._extensions = {"tls": self._tls_extension}

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls_extension is None:
            return
        scope = cast(dict[str, Any], self.scope)
        extensions = scope.get("extensions")
        if extensions:
            scope["extensions"] = {**extensions, "tls": self._tls_extension}
        else:
            # the same mapping for every request of this connection (the application must
            # treat it as read-only): built once per connection, not per request
            scope["extensions"] = self._extensions
        scope[PEER_SCOPE_KEY] = self._peer


# --------------------------------------------------------------------------- uvicorn wiring


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Where the gateway's certificate, key and client CA live, and how often to re-read them."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_cert_mode: ClientCertMode = ClientCertMode.NONE
    reload_interval: float = 10.0  # seconds; 0 disables the poller

    def build(self) -> ReloadingContext:
        return ReloadingContext(
            self.cert_file,
            self.key_file,
            client_ca_file=self.client_ca_file,
            mode=self.client_cert_mode,
        )


class GatewayServerConfig(uvicorn.Config):
    """``uvicorn.Config`` serving TLS from a :class:`ReloadingContext`.

    With ``tls`` set, the HTTP protocol defaults to :class:`PeerCertHttpToolsProtocol` and
    ``load()`` installs the reloading listening context as ``self.ssl`` (which uvicorn passes
    to ``loop.create_server(ssl=...)``).  Without it, this is plain ``uvicorn.Config``.
    """

    def __init__(
        self,
        app: Any,
        *,
        tls: TLSConfig | ReloadingContext | None = None,
        **kwargs: Any,
    ) -> None:
        if tls is not None:
            kwargs.setdefault("http", PeerCertHttpToolsProtocol)
        super().__init__(app, **kwargs)
        self.tls_reload_interval = 0.0
        if isinstance(tls, TLSConfig):
            self.tls_reload_interval = tls.reload_interval
            self.tls: ReloadingContext | None = tls.build()
        else:
            self.tls = tls

    @property
    def is_ssl(self) -> bool:
        # Only once loaded: uvicorn's own ``load()`` would otherwise build a context from
        # ``ssl_certfile``.  Afterwards it makes the startup line say ``https://``.
        return super().is_ssl or (self.tls is not None and self.loaded)

    def load(self) -> None:
        super().load()
        if self.tls is not None:
            self.ssl = self.tls.context


class GatewayServer(uvicorn.Server):
    """``uvicorn.Server`` that also polls the TLS files while it serves."""

    async def serve(self, sockets: Any = None) -> None:
        config = self.config
        poller: asyncio.Task[None] | None = None
        if (
            isinstance(config, GatewayServerConfig)
            and config.tls is not None
            and config.tls_reload_interval > 0
        ):
            poller = asyncio.create_task(
                config.tls.run(config.tls_reload_interval), name="netweave-tls-reload"
            )
        try:
            await super().serve(sockets)
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller


# --------------------------------------------------------------------------- behind a proxy


def trusted_proxy(
    client_host: str, proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """Whether the direct peer ``client_host`` is one of the configured proxy networks."""
    try:
        address = ipaddress.ip_address(client_host)
    except ValueError:  # a unix socket path, "testclient", an empty string...
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(
        candidate.version == network.version and candidate in network
        for candidate in candidates
        for network in proxies
    )


def _split_unquoted(value: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes (``\\"`` escapes inside quotes)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif quoted and char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise ValueError("unterminated quoted value")
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _common_name_of(subject: str) -> str | None:
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        return None
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return cns[0].value if cns and isinstance(cns[0].value, str) else None


def peer_from_forwarded_header(value: str) -> PeerIdentity | None:
    """The client identity from an ``X-Forwarded-Client-Cert`` header, or None.

    Only call this for a request whose direct peer is a :func:`trusted_proxy`.  The header
    may hold one element per hop (comma-separated); the last one was added by the proxy
    that talks to us, so that is the one used.  When the element carries ``Cert`` (the
    URL-encoded PEM), the certificate itself is parsed, and must match ``Hash`` if both are
    present; otherwise ``Subject``, ``URI``, ``DNS`` and ``Hash`` are taken as given.
    Malformed headers give None.
    """
    try:
        elements = [e for e in _split_unquoted(value, ",") if e.strip()]
        if not elements:
            return None
        fields: dict[str, list[str]] = {}
        for pair in _split_unquoted(elements[-1], ";"):
            if not pair.strip():
                continue
            key, sep, raw = pair.partition("=")
            if not sep:
                return None
            fields.setdefault(key.strip().lower(), []).append(_unquote(raw))
    except ValueError:
        return None

    hash_hex = fields.get("hash", [""])[0].lower() or None
    if "cert" in fields:
        pem = urllib.parse.unquote(fields["cert"][0]).encode("ascii", errors="replace")
        try:
            peer = _identity_from_cert(x509.load_pem_x509_certificate(pem))
        except ValueError:
            return None
        if hash_hex is not None and hash_hex != peer.fingerprint_sha256:
            return None
        return peer

    subject = fields.get("subject", [""])[0]
    uris = tuple(u for u in fields.get("uri", []) if u)
    dns = tuple(d for d in fields.get("dns", []) if d)
    if not (subject or uris or dns):
        return None
    if hash_hex is not None and (
        len(hash_hex) != 64 or any(c not in "0123456789abcdef" for c in hash_hex)
    ):
        return None
    return PeerIdentity(
        subject=subject,
        common_name=_common_name_of(subject) if subject else None,
        dns_sans=dns,
        uri_sans=uris,
        email_sans=(),
        fingerprint_sha256=hash_hex or "",
    )
