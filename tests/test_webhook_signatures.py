"""The platform's one webhook signature scheme (integrationos/webhook_signatures.py): the
headers it produces, written out independently here, and every way verify refuses."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from integrationos.webhook_signatures import (
    REPLAY_WINDOW_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    sign,
    verify,
)

SECRET = "whsec_test-secret"
BODY = b'{"event":"alert.fired","alert":{"id":"alt_1"}}'
AT = 1_700_000_000


def test_the_headers_are_the_timestamp_and_the_hmac_of_timestamp_dot_body():
    headers = sign(SECRET, BODY, timestamp=AT)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert (TIMESTAMP_HEADER, SIGNATURE_HEADER) == ("X-Timestamp", "X-Signature")
    assert headers == {"X-Timestamp": "1700000000", "X-Signature": f"sha256={expected}"}
    assert verify(SECRET, BODY, headers, now=AT) == AT


def test_header_names_are_matched_in_any_case_and_the_window_edges_pass():
    headers = {name.lower(): value for name, value in sign(SECRET, BODY, AT).items()}
    assert verify(SECRET, BODY, headers, now=AT + REPLAY_WINDOW_SECONDS) == AT
    assert verify(SECRET, BODY, headers, now=AT - REPLAY_WINDOW_SECONDS) == AT
    assert verify(SECRET, BODY, headers, tolerance_seconds=10, now=AT + 10) == AT


def test_sign_defaults_to_now():
    headers = sign(SECRET, BODY)
    assert verify(SECRET, BODY, headers, tolerance_seconds=5) == int(headers[TIMESTAMP_HEADER])


def _signed(**changes: str) -> dict[str, str]:
    return {**sign(SECRET, BODY, AT), **changes}


@pytest.mark.parametrize(("secret", "body", "headers", "now", "reason"), [
    (SECRET, BODY + b" ", _signed(), AT, "does not match"),
    ("whsec_other", BODY, _signed(), AT, "does not match"),
    (SECRET, BODY, _signed(**{TIMESTAMP_HEADER: str(AT + 1)}), AT, "does not match"),
    (SECRET, BODY, _signed(), AT + REPLAY_WINDOW_SECONDS + 1, "301 s old, outside the 300 s"),
    (SECRET, BODY, _signed(), AT - REPLAY_WINDOW_SECONDS - 1, "301 s in the future"),
    (SECRET, BODY, {}, AT, "missing X-Timestamp and X-Signature$"),
    (SECRET, BODY, {TIMESTAMP_HEADER: str(AT)}, AT, "missing X-Signature$"),
    (SECRET, BODY, _signed(**{TIMESTAMP_HEADER: ""}), AT, "missing X-Timestamp$"),
    (SECRET, BODY, _signed(**{TIMESTAMP_HEADER: "1.7e9"}), AT, "malformed X-Timestamp"),
    (SECRET, BODY, _signed(**{TIMESTAMP_HEADER: "\u00b2"}), AT, "malformed X-Timestamp"),
    (SECRET, BODY, _signed(**{TIMESTAMP_HEADER: "9" * 5000}), AT, "malformed X-Timestamp"),
    (SECRET, BODY, _signed(**{SIGNATURE_HEADER: "0" * 64}), AT, "malformed X-Signature"),
    (SECRET, BODY, _signed(**{SIGNATURE_HEADER: _signed()[SIGNATURE_HEADER].upper()}), AT,
     "malformed X-Signature"),
    (SECRET, BODY, {TIMESTAMP_HEADER: str(AT), SIGNATURE_HEADER: f"t={AT},v1={'0' * 64}"}, AT,
     "malformed X-Signature"),
], ids=["body", "secret", "timestamp", "stale", "future", "no-headers", "no-signature",
        "empty-timestamp", "float-timestamp", "unicode-digit", "huge-timestamp", "no-prefix",
        "upper-hex", "old-alert-format"])
def test_tampered_stale_missing_or_malformed_is_refused(secret, body, headers, now, reason):
    with pytest.raises(InvalidSignature, match=reason):
        verify(secret, body, headers, now=now)
