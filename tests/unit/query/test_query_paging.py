"""Opaque paging markers: round trip, expiry, tampering, foreign secrets and scopes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct

import pytest

from netweave.errors import InvalidQueryError
from netweave.query import PageMarkers

SECRET = b"0123456789abcdef0123456789abcdef"
MALFORMED = "malformed paging marker"
ALTERED = "paging marker was not issued by this server or was altered"
OTHER_QUERY = "paging marker belongs to a different query"
EXPIRED = "paging marker has expired; restart the listing"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rejection(markers: PageMarkers, marker: str, scope: str = "pools") -> str:
    with pytest.raises(InvalidQueryError) as caught:
        markers.verify(marker, scope=scope)
    assert caught.value.parameter == "nextpage_opaque_marker"
    assert caught.value.status == 400
    return caught.value.detail


def test_round_trip() -> None:
    markers = PageMarkers(SECRET)
    marker = markers.issue(scope="pools", after="pool-0042")
    assert markers.verify(marker, scope="pools") == "pool-0042"


@pytest.mark.parametrize("after", ["", "a", "ü/ñ?&=#+ %", "x" * 10_000, "\ud800"])
def test_round_trip_of_unusual_keys(after: str) -> None:
    markers = PageMarkers(SECRET)
    assert markers.verify(markers.issue(scope="s", after=after), scope="s") == after


def test_marker_is_url_safe() -> None:
    marker = PageMarkers(SECRET).issue(scope="pools", after="a/b?c=d&e f+g")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", marker)


def test_marker_does_not_reveal_the_scope() -> None:
    marker = PageMarkers(SECRET).issue(scope="secret-scope-name", after="k")
    decoded = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4))
    assert b"secret-scope-name" not in decoded


def test_expiry_with_injected_clock() -> None:
    clock = Clock()
    markers = PageMarkers(SECRET, ttl_seconds=60, clock=clock)
    marker = markers.issue(scope="pools", after="k")
    clock.now += 60
    assert markers.verify(marker, scope="pools") == "k"
    clock.now += 0.5
    assert rejection(markers, marker) == EXPIRED


def test_marker_from_the_future_is_accepted() -> None:
    clock = Clock()
    markers = PageMarkers(SECRET, ttl_seconds=60, clock=clock)
    marker = markers.issue(scope="pools", after="k")
    clock.now -= 30  # another replica's clock is a little behind
    assert markers.verify(marker, scope="pools") == "k"


def test_every_flipped_character_is_detected() -> None:
    markers = PageMarkers(SECRET)
    marker = markers.issue(scope="pools", after="pool-0042")
    for index, char in enumerate(marker):
        replacement = "A" if char != "A" else "B"
        tampered = marker[:index] + replacement + marker[index + 1 :]
        assert rejection(markers, tampered) in (ALTERED, MALFORMED), index


def test_flipped_payload_byte_is_reported_as_altered() -> None:
    markers = PageMarkers(SECRET)
    marker = markers.issue(scope="pools", after="pool-0042")
    tampered = marker[:5] + ("A" if marker[5] != "A" else "B") + marker[6:]
    assert rejection(markers, tampered) == ALTERED


def test_changed_key_is_detected() -> None:
    markers = PageMarkers(SECRET)
    token = bytearray(base64.urlsafe_b64decode(_padded(markers.issue(scope="s", after="aaaa"))))
    token[17] = ord("b")
    forged = base64.urlsafe_b64encode(bytes(token)).rstrip(b"=").decode()
    assert rejection(markers, forged, scope="s") == ALTERED


def test_wrong_secret() -> None:
    marker = PageMarkers(b"another secret").issue(scope="pools", after="k")
    assert rejection(PageMarkers(SECRET), marker) == ALTERED


def test_different_scope() -> None:
    markers = PageMarkers(SECRET)
    marker = markers.issue(scope="pools?filter=(eq,name,a)", after="k")
    assert rejection(markers, marker, scope="pools?filter=(eq,name,b)") == OTHER_QUERY


@pytest.mark.parametrize(
    "marker",
    [
        "",
        "A",
        "AAAA",
        "not a marker",
        "abc+def/ghi=",
        "====",
        "ü" * 40,
        "A" * 33,  # length 1 mod 4: not base64
        "\x00" * 40,
        "A" * 100_000,
    ],
)
def test_malformed(marker: str) -> None:
    detail = rejection(PageMarkers(SECRET), marker)
    assert detail in (MALFORMED, ALTERED)
    if len(marker) < 44:
        assert detail == MALFORMED


def test_padded_or_non_canonical_marker_is_malformed() -> None:
    markers = PageMarkers(SECRET)
    marker = markers.issue(scope="pools", after="ab")  # 35 bytes: last character has slack
    assert len(base64.urlsafe_b64decode(_padded(marker))) % 3 != 0
    assert rejection(markers, marker + "=") == MALFORMED
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(marker[-1])
    sloppy = marker[:-1] + alphabet[last ^ 1]  # same bytes, different unused bits
    assert rejection(markers, sloppy) == MALFORMED


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        PageMarkers(b"")


def _padded(marker: str) -> str:
    return marker + "=" * (-len(marker) % 4)


def _forge(version: int, after: bytes, scope: str = "s", issued: float = 1e9) -> str:
    """A marker built by hand with SECRET, following the layout in the module docstring."""
    scope_hash = hashlib.sha256(scope.encode()).digest()[:8]
    payload = struct.pack(">Bd8s", version, issued, scope_hash) + after
    mac = hmac.new(SECRET, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def test_forged_layout_is_understood() -> None:
    markers = PageMarkers(SECRET, clock=Clock(1e9))
    assert markers.verify(_forge(1, b"key"), scope="s") == "key"


def test_unknown_version_is_malformed() -> None:
    assert rejection(PageMarkers(SECRET, clock=Clock(1e9)), _forge(2, b"key"), "s") == MALFORMED


def test_undecodable_key_is_malformed() -> None:
    markers = PageMarkers(SECRET, clock=Clock(1e9))
    assert rejection(markers, _forge(1, b"\xff\xfe"), "s") == MALFORMED


def test_nan_issue_time_is_expired() -> None:
    markers = PageMarkers(SECRET, clock=Clock(1e9))
    assert rejection(markers, _forge(1, b"k", issued=float("nan")), "s") == EXPIRED
