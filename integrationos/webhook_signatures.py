"""The platform's one webhook signature scheme: how it signs what it sends (HTTP targets with a
``signingSecret``, alert notifications) and checks what it receives
(``POST /v1/webhooks/{integrationId}``)::

    X-Timestamp: <Unix time in whole seconds>
    X-Signature: sha256=<lowercase hex HMAC-SHA256(secret, X-Timestamp + "." + raw body)>

The timestamp is inside the signed text, so it cannot be changed without breaking the
signature; a receiver refuses one more than ``REPLAY_WINDOW_SECONDS`` from its own clock, so
a captured request cannot be replayed later. The HMAC is over the body exactly as sent
(before any JSON parsing) and is compared in constant time.

Standard library only, so receivers can copy this file; the Python SDK
(``integration_platform.webhooks``) implements the same scheme and a test keeps the two in
step.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
REPLAY_WINDOW_SECONDS = 300

# Bounded, ASCII-only digits: str.isdigit() also accepts characters such as "²" that int()
# rejects, and int() refuses strings over 4300 digits; either would escape as a ValueError.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")


class InvalidSignature(ValueError):
    """The request is not signed with the secret, is malformed, or its timestamp is outside
    the replay window; the message says which."""


def _signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The two headers to send with exactly these ``body`` bytes at ``timestamp`` (now by
    default)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: _signature(secret, stamp, body)}


def verify(secret: str, body: bytes, headers: Mapping[str, str],
           tolerance_seconds: float = REPLAY_WINDOW_SECONDS, now: float | None = None) -> int:
    """Return the signed timestamp if ``headers`` (any capitalisation of the names) sign
    ``body`` with ``secret`` within ``tolerance_seconds`` of ``now``; raise
    ``InvalidSignature`` saying what is wrong otherwise.

    The checks depend only on the headers and the body, never on the secret, so the time a
    refusal takes says nothing about the secret it was checked against.
    """
    found: dict[str, str] = {}
    for name, value in headers.items():  # the first of repeated headers, as HTTP servers do
        found.setdefault(name.lower(), value)
    stamp = found.get(TIMESTAMP_HEADER.lower(), "")
    given = found.get(SIGNATURE_HEADER.lower(), "")
    missing = [name for name, value in ((TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, given))
               if not value]
    if missing:
        raise InvalidSignature(f"missing {' and '.join(missing)}")
    if not _TIMESTAMP.fullmatch(stamp):
        raise InvalidSignature(f"malformed {TIMESTAMP_HEADER}: must be Unix time in whole "
                               "seconds")
    if not _SIGNATURE.fullmatch(given):
        raise InvalidSignature(f"malformed {SIGNATURE_HEADER}: must be sha256=<64 lowercase "
                               "hex digits>")
    timestamp = int(stamp)
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance_seconds:
        when = "old" if skew > 0 else "in the future"
        raise InvalidSignature(f"{TIMESTAMP_HEADER} {timestamp} is {abs(skew):.0f} s {when}, "
                               f"outside the {tolerance_seconds:g} s replay window")
    if not hmac.compare_digest(_signature(secret, stamp, body), given):
        raise InvalidSignature("the signature does not match the body")
    return timestamp
