"""Inbound webhooks: ``POST /v1/webhooks/{integrationId}``, for senders that cannot hold an
API key but can sign (the scheme is ``integrationos.webhook_signatures``).

The route is public; the signature is the authentication. The secret is the
``webhookSecret`` credential of the integration's HTTP source connector; ``X-Timestamp``
must be within ``REPLAY_WINDOW_SECONDS`` of now, so a captured request cannot be replayed
later.
An accepted body is ingested exactly like ``POST /v1/integrations/{id}/messages``.

An unknown integration (or one without a webhook secret) gets 404 after the same work as a
known one (the lookup, reading the body, the same signature check against a stand-in
secret), so the time of an answer does not tell more than its status.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from integrationos.api.context import TENANT_SCOPE_KEY, Platform, platform
from integrationos.api.errors import ApiError, not_found
from integrationos.api.routes.messages import check_accepting, ingest_body
from integrationos.api.routing import resource
from integrationos.api.validation import read_body
from integrationos.store.projections import sealed_from_text
from integrationos.store.tables import connectors, integrations
from integrationos.webhook_signatures import (
    REPLAY_WINDOW_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    verify,
)

_STAND_IN_SECRET = "no-webhook-secret-for-this-integration"


def _webhook(p: Platform, integration_id: str) -> tuple[Row[Any], str] | None:
    """The live integration and its webhook secret, if its source is an HTTP connector
    that has one."""
    query = (
        select(integrations, connectors.c.credentials_sealed)
        .join(connectors, connectors.c.id == integrations.c.source_connector_id)
        .where(integrations.c.id == integration_id, integrations.c.deleted.is_(False),
               connectors.c.tenant_id == integrations.c.tenant_id,
               connectors.c.connector_type == "HTTP", connectors.c.deleted.is_(False))
    )
    with p.engine.connect() as conn:
        row = conn.execute(query).first()
    sealed = sealed_from_text(row.credentials_sealed) if row is not None else None
    secret = p.vault.open(sealed).get("webhookSecret") if sealed else None
    return (row, secret) if row is not None and secret else None


def _signed(secret: str, headers: Headers, body: bytes) -> bool:
    """A valid signature over a timestamp within the replay window. Every refusal gets the
    same answer: the reason would help a forger more than an honest sender."""
    try:
        verify(secret, body, headers)
    except InvalidSignature:
        return False
    return True


async def receive_webhook(request: Request) -> Response:
    p, integration_id = platform(request), request.path_params["integrationId"]
    found = await run_in_threadpool(_webhook, p, integration_id)
    body = await read_body(request, p.settings.max_payload_bytes)
    signed = _signed(found[1] if found else _STAND_IN_SECRET, request.headers, body)
    if found is None:
        raise not_found("webhook for integration", integration_id)
    if not signed:
        raise ApiError(401, "INVALID_SIGNATURE", f"{SIGNATURE_HEADER} must be sha256=<hex "
                       f"HMAC-SHA256 of {TIMESTAMP_HEADER} + '.' + body> with a timestamp "
                       f"within {REPLAY_WINDOW_SECONDS} s of now",
                       headers={"WWW-Authenticate": f'HMAC-SHA256 headers="{TIMESTAMP_HEADER} '
                                f'{SIGNATURE_HEADER}"'})
    integration = found[0]
    check_accepting(integration)
    request.scope[TENANT_SCOPE_KEY] = integration.tenant_id  # the signature proved it
    return await ingest_body(request, integration.id, body)


routes = [resource("/v1/webhooks/{integrationId}", POST=receive_webhook)]
