"""Signing and verifying the webhooks IntegrationOS sends (alert notifications).

Header format (the same scheme as Stripe's, so existing verifiers are easy to adapt)::

    X-IntegrationOS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>

The HMAC is computed with the rule's webhook secret over ``<t>.<raw body bytes>``, so the
timestamp cannot be changed without breaking the signature. A receiver recomputes it over
the body exactly as received (before any JSON parsing), compares in constant time, and
refuses a timestamp more than ``REPLAY_WINDOW_SECONDS`` away from its own clock, so a
captured request cannot be replayed later. Several ``v1=`` entries may appear (one per
secret while a secret is rotated); one match suffices.

This module has no dependency beyond the standard library so receivers can copy it; the
Python SDK mirrors it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-IntegrationOS-Signature"
REPLAY_WINDOW_SECONDS = 300


class InvalidSignature(ValueError):
    """The request is not signed with the secret, or its timestamp is outside the window."""


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body,
                    hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body`` sent at ``timestamp`` (now by default)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={_mac(secret, at, body)}"


def verify(secret: str, body: bytes, header: str | None,
           tolerance_seconds: int = REPLAY_WINDOW_SECONDS, now: float | None = None) -> int:
    """Return the signed timestamp if ``header`` signs ``body`` with ``secret`` within the
    replay window; raise ``InvalidSignature`` saying what is wrong otherwise."""
    if not header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("the header must be t=<unix seconds>,v1=<hex>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidSignature(f"timestamp {timestamp} is outside the {tolerance_seconds} s "
                               "replay window")
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in candidates):
        raise InvalidSignature("the signature does not match the body")
    return timestamp
