"""How alert events change the read models: rules (config topic) and alerts with their
notifications (alerts topic). Idempotent like every handler: upserts by id, notifications
stored by event id."""

from __future__ import annotations

import json

from sqlalchemy import Connection, insert, select, update

from integrationos.store.projections import _soft_delete, _upsert, handles, seal_to_text
from integrationos.store.tables import alert_notifications, alert_rules, alerts
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event


@handles(t.ALERT_RULE_CREATED, t.ALERT_RULE_UPDATED)
def _alert_rule_state(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, alert_rules, "id", {
        "id": d["id"], "tenant_id": event.tenant, "name": d["name"],
        "severity": d["severity"], "enabled": d["enabled"],
        "condition_type": json.loads(d["conditionJson"])["type"],
        "condition_json": d["conditionJson"], "channels_json": d["channelsJson"],
        "repeat_interval_s": d["repeatIntervalSeconds"],
        "secret_sealed": seal_to_text(d["secret"]), "version": d["version"], "deleted": False,
        "created_at": event.occurred_at_ms, "updated_at": event.occurred_at_ms,
    })


@handles(t.ALERT_RULE_DELETED)
def _alert_rule_deleted(conn: Connection, event: Event) -> None:
    _soft_delete(conn, alert_rules, event)


@handles(t.ALERT_FIRED)
def _alert_fired(conn: Connection, event: Event) -> None:
    d = event.data
    _upsert(conn, alerts, "id", {
        "id": d["alertId"], "tenant_id": event.tenant, "rule_id": d["ruleId"],
        "rule_name": d["ruleName"], "severity": d["severity"],
        "condition_type": d["conditionType"], "integration_id": d["integrationId"],
        "connector_id": d["connectorId"], "state": "FIRING", "value": d["value"],
        "threshold": d["threshold"], "summary": d["summary"],
        "created_at": event.occurred_at_ms,
    })


@handles(t.ALERT_RESOLVED)
def _alert_resolved(conn: Connection, event: Event) -> None:
    d = event.data
    conn.execute(update(alerts).where(alerts.c.id == d["alertId"],
                                      alerts.c.tenant_id == event.tenant).values(
        state="RESOLVED", resolved_at=event.occurred_at_ms, resolved_summary=d["summary"]))


@handles(t.ALERT_NOTIFIED)
def _alert_notified(conn: Connection, event: Event) -> None:
    """One channel's outcome; the alert's ``last_notified_at`` is the latest round, sent or
    not, which is what the evaluator counts the repeat interval from."""
    seen = conn.execute(select(alert_notifications.c.event_id).where(
        alert_notifications.c.event_id == event.event_id)).first()
    if seen:
        return
    d = event.data
    conn.execute(insert(alert_notifications).values(
        event_id=event.event_id, alert_id=d["alertId"], tenant_id=event.tenant,
        kind=d["kind"], channel=d["channel"][:400], outcome=d["outcome"],
        attempts=d["attempts"], error=d["error"], occurred_at=event.occurred_at_ms))
    current = conn.execute(select(alerts.c.last_notified_at).where(
        alerts.c.id == d["alertId"])).first()
    if current is not None and (current.last_notified_at or 0) < event.occurred_at_ms:
        conn.execute(update(alerts).where(alerts.c.id == d["alertId"]).values(
            last_notified_at=event.occurred_at_ms))
