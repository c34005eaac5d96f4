"""HMAC-SHA256 signatures of notification bodies.

When a secret is configured (per subscription, or globally), every notification POST
carries two headers::

    X-Netweave-Timestamp: 1764160000
    X-Netweave-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The timestamp (Unix seconds, decimal) is part of the signed message, so a captured
notification cannot be replayed later with a fresh timestamp. ``v1`` names the scheme.
:func:`verify` is the reference check a receiver can copy.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_SCHEME",
    "TIMESTAMP_HEADER",
    "sign",
    "signature_headers",
    "verify",
]

TIMESTAMP_HEADER = "X-Netweave-Timestamp"
SIGNATURE_HEADER = "X-Netweave-Signature"
SIGNATURE_SCHEME = "v1"

_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,15}")


def sign(secret: bytes, *, timestamp: int, body: bytes) -> str:
    """The signature header value: ``v1=`` and the hex HMAC-SHA256 of
    ``"<timestamp>." + body`` under ``secret``."""
    message = f"{timestamp}.".encode("ascii") + body
    digest = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def signature_headers(secret: bytes | None, body: bytes, *, now: float) -> dict[str, str]:
    """The timestamp and signature headers of a POST of ``body`` at ``now`` (Unix
    seconds); empty when there is no secret (signing is optional)."""
    if secret is None:
        return {}
    timestamp = int(now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp=timestamp, body=body),
    }


def verify(
    secret: bytes,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float,
    tolerance: float = 300,
) -> bool:
    """Check a notification's signature, as a receiver does.

    To verify a notification you received:

    1. Read the ``X-Netweave-Timestamp`` and ``X-Netweave-Signature`` headers and the raw
       request body, byte for byte as received (before any JSON parsing or re-encoding).
       Reject the request when either header is missing.
    2. Check that the timestamp is a decimal integer within ``tolerance`` seconds (5
       minutes by default) of your clock, in either direction; reject it otherwise, so a
       captured request cannot be replayed later.
    3. Compute ``"v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body))`` with the secret
       shared with the gateway, where ``timestamp`` is the header value as ASCII bytes.
    4. Compare it with the signature header in constant time (``hmac.compare_digest``),
       never with ``==``; accept the notification only when they are equal.

    Returns True when the signature is valid and fresh. ``now`` is your clock in Unix
    seconds (``time.time()``). The notification id (``notificationId``) stays the same
    across retries; use it to drop the duplicates that at-least-once delivery can cause.
    """
    if not _TIMESTAMP.fullmatch(timestamp) or not signature.isascii():
        return False
    sent_at = int(timestamp)
    if abs(now - sent_at) > tolerance:
        return False
    expected = sign(secret, timestamp=sent_at, body=body)
    return hmac.compare_digest(expected, signature)
