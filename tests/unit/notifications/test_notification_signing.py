"""HMAC-SHA256 notification signatures: signing, headers, verification."""

from __future__ import annotations

import pytest

from netweave.notifications.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    signature_headers,
    verify,
)

SECRET = b"s3cret"
BODY = b'{"a":1}'
NOW = 1_764_160_000.75


def test_sign_known_vector() -> None:
    # printf '1764160000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
    expected = "f5347e5eefd0ebef62ca9b9b42a3395770eb512498e918b51c5b2397303b43f9"
    assert sign(SECRET, timestamp=1_764_160_000, body=BODY) == f"v1={expected}"


def test_no_secret_no_headers() -> None:
    assert signature_headers(None, BODY, now=NOW) == {}


def test_headers_carry_whole_seconds_and_signature() -> None:
    headers = signature_headers(SECRET, BODY, now=NOW)
    assert headers == {
        "X-Netweave-Timestamp": "1764160000",
        "X-Netweave-Signature": sign(SECRET, timestamp=1_764_160_000, body=BODY),
    }
    assert set(headers) == {TIMESTAMP_HEADER, SIGNATURE_HEADER}


def _received(body: bytes = BODY, *, now: float = NOW) -> dict[str, str]:
    headers = signature_headers(SECRET, body, now=now)
    return {"timestamp": headers[TIMESTAMP_HEADER], "signature": headers[SIGNATURE_HEADER]}


def test_round_trip() -> None:
    assert verify(SECRET, body=BODY, now=NOW + 1, **_received())


def test_empty_body_round_trip() -> None:
    assert verify(SECRET, body=b"", now=NOW, **_received(b""))


@pytest.mark.parametrize(
    "tampered_body",
    [b'{"a":2}', b'{"a":1} ', b"", BODY + b"\n", BODY.upper()],
)
def test_tampered_body_rejected(tampered_body: bytes) -> None:
    assert not verify(SECRET, body=tampered_body, now=NOW, **_received())


def test_tampered_timestamp_rejected() -> None:
    received = _received()
    received["timestamp"] = str(int(received["timestamp"]) + 1)
    assert not verify(SECRET, body=BODY, now=NOW, **received)


def test_wrong_secret_rejected() -> None:
    assert not verify(b"other", body=BODY, now=NOW, **_received())


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "v1=",
        "v2=" + "0" * 64,
        "f5347e5eefd0ebef62ca9b9b42a3395770eb512498e918b51c5b2397303b43f9",
        "v1=ünicode",
    ],
)
def test_malformed_signature_rejected(signature: str) -> None:
    received = _received()
    received["signature"] = signature
    assert not verify(SECRET, body=BODY, now=NOW, **received)


def test_signature_case_matters() -> None:
    received = _received()
    received["signature"] = "v1=" + received["signature"][3:].upper()
    assert not verify(SECRET, body=BODY, now=NOW, **received)


@pytest.mark.parametrize("timestamp", ["", "abc", " 1764160000", "+1764160000", "1.5", "01"])
def test_malformed_timestamp_rejected(timestamp: str) -> None:
    signature = _received()["signature"]
    assert not verify(SECRET, timestamp=timestamp, signature=signature, body=BODY, now=NOW)


@pytest.mark.parametrize(
    ("age", "fresh"),
    [(0, True), (299, True), (300, True), (301, False), (86_400, False)],
)
def test_stale_timestamp_rejected(age: float, fresh: bool) -> None:
    sent = _received(now=1_764_160_000)
    assert verify(SECRET, body=BODY, now=1_764_160_000 + age, **sent) is fresh


@pytest.mark.parametrize(("ahead", "fresh"), [(300, True), (301, False), (3_600, False)])
def test_future_timestamp_rejected(ahead: float, fresh: bool) -> None:
    sent = _received(now=1_764_160_000 + ahead)
    assert verify(SECRET, body=BODY, now=1_764_160_000, **sent) is fresh


def test_tolerance_is_configurable() -> None:
    sent = _received(now=1_764_160_000)
    assert not verify(SECRET, body=BODY, now=1_764_160_010, tolerance=5, **sent)
    assert verify(SECRET, body=BODY, now=1_764_160_010, tolerance=10, **sent)
