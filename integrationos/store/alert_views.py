"""An alert row as the outside world sees it: in ``GET /v1/alerts`` and in the webhook and
email notifications, which must say the same thing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row


def _iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_view(row: Row) -> dict[str, Any]:
    return {
        "id": row.id, "ruleId": row.rule_id, "ruleName": row.rule_name,
        "severity": row.severity, "state": row.state, "conditionType": row.condition_type,
        "integrationId": row.integration_id, "connectorId": row.connector_id,
        "value": row.value, "threshold": row.threshold, "summary": row.summary,
        "resolvedSummary": row.resolved_summary, "firedAt": _iso(row.created_at),
        "resolvedAt": _iso(row.resolved_at), "lastNotifiedAt": _iso(row.last_notified_at),
    }
