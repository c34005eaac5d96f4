"""Opaque, tamper-evident keyset paging markers (``nextpage_opaque_marker``).

A marker carries the last sort key of a page (``after``), the time it was issued and a hash
of its *scope* (whatever identifies the query: collection, filter, field selection...),
authenticated with HMAC-SHA256. It is base64url without padding, so it needs no
percent-encoding in a URL. Layout of the decoded bytes::

    version (1) | issued at, IEEE double seconds (8) | scope hash (8) | after, UTF-8 | MAC (16)

:meth:`PageMarkers.verify` checks, in order: the encoding and structure, the MAC, the
version, the scope and the age; each failure is an :class:`InvalidQueryError` with its own
detail, and no other exception escapes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import time
from collections.abc import Callable

from netweave.errors import InvalidQueryError

__all__ = ["PageMarkers"]

_PARAMETER = "nextpage_opaque_marker"
_VERSION = 1
_HEADER = struct.Struct(">Bd8s")
_MAC_SIZE = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class PageMarkers:
    """Issues and verifies paging markers with one secret."""

    def __init__(
        self,
        secret: bytes,
        *,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("the paging marker secret must not be empty")
        self._secret = secret
        self._ttl = ttl_seconds
        self._clock = clock

    def issue(self, *, scope: str, after: str) -> str:
        """A marker for the page that follows the sort key ``after`` in ``scope``."""
        header = _HEADER.pack(_VERSION, self._clock(), _scope_hash(scope))
        payload = header + after.encode("utf-8", "surrogatepass")
        token = payload + self._mac(payload)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def verify(self, marker: str, *, scope: str) -> str:
        """The ``after`` key of ``marker``, which must be valid, intact, of ``scope`` and fresh."""
        token = _decode(marker)
        if token is None or len(token) < _HEADER.size + _MAC_SIZE:
            raise _error("malformed paging marker")
        payload, mac = token[:-_MAC_SIZE], token[-_MAC_SIZE:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise _error("paging marker was not issued by this server or was altered")
        version, issued_at, scope_hash = _HEADER.unpack_from(payload)
        if version != _VERSION:
            raise _error("malformed paging marker")
        if not hmac.compare_digest(scope_hash, _scope_hash(scope)):
            raise _error("paging marker belongs to a different query")
        if not self._clock() - issued_at <= self._ttl:
            raise _error("paging marker has expired; restart the listing")
        try:
            return payload[_HEADER.size :].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _error("malformed paging marker") from None

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_SIZE]


def _scope_hash(scope: str) -> bytes:
    return hashlib.sha256(scope.encode("utf-8", "surrogatepass")).digest()[:8]


def _decode(marker: str) -> bytes | None:
    """The bytes of a canonical unpadded base64url ``marker``, or None."""
    if len(marker) % 4 == 1 or not _BASE64URL.fullmatch(marker):
        return None
    try:
        token = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii") != marker:
        return None  # stray bits in the last character: not a marker this class wrote
    return token


def _error(detail: str) -> InvalidQueryError:
    return InvalidQueryError(detail, parameter=_PARAMETER)
