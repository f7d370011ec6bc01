"""The read models behind versions, promotion and the audit log of integrations: every
version's definition, the lineage of promoted integrations, the remembered connector
bindings and one history row per event that changed an integration.

Called by the handlers in ``projections``; idempotent like them (a record applied twice
leaves the same rows).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from integrationos.store.tables import (
    connector_bindings,
    integration_history,
    integration_lineages,
    integration_versions,
)
from integrationos.topics.envelope import Event

DEFINITION_FIELDS = ("sourceConnectorId", "targetConnectorId", "transformationId",
                     "transformationVersion", "expression", "errorStrategy", "backoff")


def definition_of(state: dict[str, Any]) -> dict[str, Any]:
    """What a version is made of: the state minus identity (id, name, environment, version)."""
    return {key: state.get(key) for key in DEFINITION_FIELDS}


def record_version(conn: Connection, event: Event, state: dict[str, Any], origin: str,
                   actor: str | None, promoted_from: tuple[str, int] | None = None,
                   restored_version: int | None = None) -> None:
    """Keep the version ``state`` describes; a version once written never changes."""
    key = (integration_versions.c.integration_id == state["id"],
           integration_versions.c.version == state["version"])
    if conn.execute(select(integration_versions.c.version).where(*key)).first() is not None:
        return
    conn.execute(insert(integration_versions).values(
        integration_id=state["id"], version=state["version"], tenant_id=event.tenant,
        environment=state["environment"], name=state["name"],
        definition_json=json.dumps(definition_of(state), ensure_ascii=False), origin=origin,
        promoted_from_id=promoted_from[0] if promoted_from else None,
        promoted_from_version=promoted_from[1] if promoted_from else None,
        restored_version=restored_version, created_by=actor, created_at=event.occurred_at_ms,
    ))


def record_history(conn: Connection, event: Event, integration_id: str,
                   version: int | None, actor: str | None, details: dict[str, Any]) -> None:
    """One audit-log row for ``integration_id``; an event seen again adds nothing."""
    seen = conn.execute(select(integration_history.c.seq).where(
        integration_history.c.event_id == event.event_id,
        integration_history.c.integration_id == integration_id)).first()
    if seen is not None:
        return
    conn.execute(insert(integration_history).values(
        event_id=event.event_id, integration_id=integration_id, tenant_id=event.tenant,
        event_type=event.type, version=version, actor=actor,
        details_json=json.dumps(details, ensure_ascii=False), occurred_at=event.occurred_at_ms,
    ))


def link_lineage(conn: Connection, event: Event, integration_id: str, lineage_id: str) -> None:
    """Record that ``integration_id`` was promoted from ``lineage_id``'s stages."""
    if integration_id == lineage_id:
        return
    found = conn.execute(select(integration_lineages.c.lineage_id).where(
        integration_lineages.c.integration_id == integration_id)).first()
    if found is None:
        conn.execute(insert(integration_lineages).values(
            integration_id=integration_id, tenant_id=event.tenant, lineage_id=lineage_id))


def remember_bindings(conn: Connection, event: Event, lineage_id: str, environment: str,
                      bindings: list[dict[str, Any]]) -> None:
    """The bindings a promotion applied become the lineage's bindings for that stage."""
    for binding in bindings:
        key = (connector_bindings.c.tenant_id == event.tenant,
               connector_bindings.c.lineage_id == lineage_id,
               connector_bindings.c.environment == environment,
               connector_bindings.c.from_connector_id == binding["fromConnectorId"])
        conn.execute(delete(connector_bindings).where(*key))
        conn.execute(insert(connector_bindings).values(
            tenant_id=event.tenant, lineage_id=lineage_id, environment=environment,
            from_connector_id=binding["fromConnectorId"],
            to_connector_id=binding["toConnectorId"], updated_at=event.occurred_at_ms))
