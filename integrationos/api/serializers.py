"""Read-model rows to the API's camelCase JSON. Credentials leave only masked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from integrationos.connectors.credentials import CredentialsUnreadable, CredentialVault, mask
from integrationos.store.projections import sealed_from_text


def iso(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. ``2026-02-01T09:30:00.123Z``."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _audit(row: Row) -> dict[str, Any]:
    return {"version": row.version, "createdAt": iso(row.created_at),
            "updatedAt": iso(row.updated_at)}


def open_credentials(vault: CredentialVault, row: Row) -> dict[str, Any]:
    sealed = sealed_from_text(row.credentials_sealed)
    return {} if sealed is None else vault.open(sealed)


def _masked(vault: CredentialVault, row: Row) -> dict[str, str] | None:
    """Field names of the stored credentials; None if this master key cannot open them."""
    try:
        return mask(open_credentials(vault, row))
    except CredentialsUnreadable:
        return None


def connector(row: Row, vault: CredentialVault) -> dict[str, Any]:
    has_credentials = row.credentials_sealed is not None
    return {
        "id": row.id,
        "name": row.name,
        "type": row.connector_type,
        "config": json.loads(row.config_json),
        "credentials": _masked(vault, row) if has_credentials else None,
        "hasCredentials": has_credentials,
        **_audit(row),
    }


def transformation(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "sourceSchema": _json_or_none(row.source_schema),
        "targetSchema": _json_or_none(row.target_schema),
        "expression": row.expression,
        **_audit(row),
    }


def transformation_version(row: Row) -> dict[str, Any]:
    return {
        "transformationId": row.transformation_id,
        "version": row.version,
        "sourceSchema": _json_or_none(row.source_schema),
        "targetSchema": _json_or_none(row.target_schema),
        "expression": row.expression,
        "createdAt": iso(row.created_at),
    }


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def integration(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "environment": row.environment,
        "status": row.status,
        "sourceConnectorId": row.source_connector_id,
        "targetConnectorId": row.target_connector_id,
        "transformationId": row.transformation_id,
        "transformationVersion": row.transformation_version,
        "expression": row.expression,
        "errorStrategy": row.error_strategy,
        "backoff": backoff(row),
        **_audit(row),
    }


def backoff(row: Row) -> dict[str, Any] | None:
    """The integration's own backoff as the API and the events spell it; None: defaults."""
    if row.backoff_initial_ms is None:
        return None
    return {"initialDelayMs": row.backoff_initial_ms, "maxDelayMs": row.backoff_max_ms,
            "multiplier": row.backoff_multiplier}


def paused_reason(row: Row) -> dict[str, Any] | None:
    """Why the integration is paused (USER, or FAIL_FAST with the message that failed)."""
    if row.status != "PAUSED":
        return None
    return {"reason": row.paused_reason, "messageId": row.paused_message_id,
            "code": row.paused_code, "message": row.paused_message, "at": iso(row.paused_at)}


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def message(row: Row, events: list[Row]) -> dict[str, Any]:
    last_error = None
    if row.last_error_code is not None:
        last_error = {"code": row.last_error_code, "message": row.last_error_message or ""}
    return {
        "id": row.id,
        "integrationId": row.integration_id,
        "status": row.status,
        "attempts": row.attempts,
        "receivedAt": iso(row.received_at),
        "updatedAt": iso(row.updated_at),
        "payload": _json_or_none(row.payload_json),
        "output": _json_or_none(row.output_json),
        "lastError": last_error,
        "events": [
            {"type": e.event_type, "occurredAt": iso(e.occurred_at),
             "data": json.loads(e.data_json)}
            for e in events
        ],
    }
