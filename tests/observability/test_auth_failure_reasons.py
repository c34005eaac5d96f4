"""How a failed authentication gets its ``netweave_auth_failures_total`` reason.

The reason comes from the error's status and the credentials the request carried, in
every authentication mode; the error's text never matters (the same text is used below
for every case to make sure of it).  The end-to-end test of the catalogue sees the other
reasons (forbidden, rate_limited) counted by a live gateway.
"""

from __future__ import annotations

import pytest

from netweave.api.access import authentication_failure
from netweave.errors import (
    BackendUnavailableError,
    ForbiddenError,
    O2Error,
    UnauthenticatedError,
)
from netweave.observability.metrics import AUTH_FAILURE_REASONS

TEXT = "whatever the error says"
UNAUTHENTICATED = UnauthenticatedError(TEXT)


@pytest.mark.parametrize(
    ("mode", "token", "certificate", "reason"),
    [
        ("token", False, False, "missing_credentials"),
        ("token", False, True, "missing_credentials"),
        ("token", True, False, "invalid_token"),
        ("token", True, True, "invalid_token"),
        ("mtls", False, False, "missing_credentials"),
        ("mtls", True, False, "missing_credentials"),
        ("mtls", False, True, "invalid_certificate"),
        ("mtls", True, True, "invalid_certificate"),
        ("any", False, False, "missing_credentials"),
        ("any", False, True, "invalid_certificate"),
        ("any", True, False, "invalid_token"),  # a token, when sent, is what is checked
        ("any", True, True, "invalid_token"),
        ("both", False, False, "missing_credentials"),
        ("both", False, True, "missing_credentials"),
        ("both", True, False, "missing_credentials"),
        ("both", True, True, "invalid_token"),
    ],
)
def test_a_401_is_missing_or_invalid_credentials_of_the_mode(
    mode: str, token: bool, certificate: bool, reason: str
) -> None:
    got = authentication_failure(UNAUTHENTICATED, mode=mode, token=token, certificate=certificate)
    assert got == reason


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ForbiddenError(TEXT), "tenant_refused"),
        (BackendUnavailableError(TEXT), "unavailable"),
        (O2Error(TEXT), "unavailable"),  # a 500
    ],
)
@pytest.mark.parametrize("mode", ["token", "mtls", "any", "both"])
def test_403_and_5xx_do_not_depend_on_the_credentials(
    error: O2Error, reason: str, mode: str
) -> None:
    for token in (False, True):
        for certificate in (False, True):
            got = authentication_failure(error, mode=mode, token=token, certificate=certificate)
            assert got == reason


def test_every_reason_is_one_of_the_metric_s_label_values() -> None:
    reasons = {
        authentication_failure(error, mode=mode, token=token, certificate=certificate)
        for error in (UNAUTHENTICATED, ForbiddenError(TEXT), BackendUnavailableError(TEXT))
        for mode in ("token", "mtls", "any", "both")
        for token in (False, True)
        for certificate in (False, True)
    }
    assert reasons <= set(AUTH_FAILURE_REASONS)
    # the access middleware adds the refusals that are not authentication failures
    assert set(AUTH_FAILURE_REASONS) - reasons == {"forbidden", "rate_limited"}
