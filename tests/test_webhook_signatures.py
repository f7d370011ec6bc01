"""The webhook signature scheme receivers verify with (integrationos/webhook_signatures.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from integrationos.webhook_signatures import REPLAY_WINDOW_SECONDS, InvalidSignature, sign, verify

SECRET = "whsec_test-secret"
BODY = b'{"event":"alert.fired","alert":{"id":"alt_1"}}'


def test_the_header_is_t_and_the_hmac_of_t_dot_body():
    header = sign(SECRET, BODY, timestamp=1_700_000_000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, BODY, header, now=1_700_000_000) == 1_700_000_000


@pytest.mark.parametrize(("secret", "body", "header", "now", "reason"), [
    (SECRET, BODY + b" ", sign(SECRET, BODY, 1000), 1000, "does not match"),
    ("whsec_other", BODY, sign(SECRET, BODY, 1000), 1000, "does not match"),
    (SECRET, BODY, sign(SECRET, BODY, 1000), 1000 + REPLAY_WINDOW_SECONDS + 1, "replay window"),
    (SECRET, BODY, sign(SECRET, BODY, 1000), 1000 - REPLAY_WINDOW_SECONDS - 1, "replay window"),
    (SECRET, BODY, sign(SECRET, BODY, 1000).replace("t=1000", "t=1001"), 1000,
     "does not match"),
    (SECRET, BODY, None, 1000, "no X-IntegrationOS-Signature"),
    (SECRET, BODY, "v1=abc", 1000, "t=<unix seconds>"),
    (SECRET, BODY, "t=1000", 1000, "t=<unix seconds>"),
    (SECRET, BODY, "garbage", 1000, "t=<unix seconds>"),
])
def test_tampered_stale_or_malformed_is_refused(secret, body, header, now, reason):
    with pytest.raises(InvalidSignature, match=reason):
        verify(secret, body, header, now=now)


def test_one_matching_signature_of_several_suffices():
    """While a secret is rotated, a sender may sign with both."""
    good = sign(SECRET, BODY, 1000).split(",")[1]
    assert verify(SECRET, BODY, f"t=1000,v1={'0' * 64},{good}", now=1000) == 1000
