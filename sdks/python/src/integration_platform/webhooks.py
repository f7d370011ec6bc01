"""Signed webhooks, in the platform's one signature scheme (``connectors/http.md``):

    X-Timestamp: <Unix time in whole seconds>
    X-Signature: sha256=<lowercase hex HMAC-SHA256(secret, X-Timestamp + "." + raw body)>

The platform signs this way what an HTTP target with a ``signingSecret`` sends (and alert
webhooks, with the rule's ``webhookSecret``), and checks this way what
``POST /v1/webhooks/{integrationId}`` receives (secret: the source connector's
``webhookSecret``), refusing timestamps more than 5 minutes from its clock.
``verify`` is for the receiving side of the first; ``sign`` for sending the second. The
platform's own implementation is ``integrationos/webhook_signatures.py``; a test signs with
each and verifies with the other.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Optional, Union

from integration_platform._errors import IntegrationPlatformError

TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
TOLERANCE_SECONDS = 300

Body = Union[bytes, str]


class WebhookVerificationError(IntegrationPlatformError):
    """The signature is missing, malformed, wrong, or its timestamp is too old (or too far
    in the future): treat the request as not from the platform."""


def signature(secret: str, timestamp: str, body: Body) -> str:
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign(secret: str, body: Body, timestamp: Optional[int] = None) -> dict[str, str]:
    """The two headers to send with exactly these ``body`` bytes."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(secret, stamp, body)}


def verify(secret: str, body: Body, headers: Mapping[str, str], *,
           tolerance: float = TOLERANCE_SECONDS, now: Optional[float] = None) -> None:
    """Raise ``WebhookVerificationError`` unless ``headers`` sign ``body`` (the raw bytes as
    received, before any JSON parsing) under ``secret`` within ``tolerance`` seconds."""
    found = {name.lower(): value for name, value in headers.items()}
    stamp = found.get(TIMESTAMP_HEADER.lower(), "")
    given = found.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit() or not given.startswith("sha256="):
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} (sha256=<hex>) are required")
    expected = signature(secret, stamp, body)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise WebhookVerificationError("the signature does not match the body")
    clock = time.time() if now is None else now
    if abs(clock - int(stamp)) > tolerance:
        raise WebhookVerificationError(
            f"the timestamp is more than {tolerance:g} s from now (a replay?)")
