"""Which integrations read from a pull-based source, and what every record they read
carries into the pipeline (routing headers, a message id stable across re-reads).

Shared by the at-least-once source runner (``engine/sources.py``) and the exactly-once
runner (``engine/exactly_once.py``), so a record gets the same id on either path.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, select

from integrationos.connectors import registry
from integrationos.connectors.base import Connector, SourceRecord
from integrationos.store.tables import connectors, integrations

_SOURCE_ID_NAMESPACE = uuid.UUID("0b6f3c1e-5f38-4a0e-8f7e-2f5a0d1c9e42")
# Record headers a source sets that travel with the record: the trace, the payload's type
# (e.g. XML files) and why a source could not parse a row (application/x-malformed).
_PASSED_HEADERS = ("traceparent", "ios-content-type", "ios-source-error")


@dataclass(frozen=True)
class SourceBinding:
    """An integration reading from a pull-based source connector, at given versions.

    The target connector's type and config are part of it because they decide how the
    source is run (exactly-once for Kafka to Kafka on one cluster); ``versions`` holds the
    integration's, the source connector's and the target connector's (0: none), so a
    change to any of them restarts the runner with the new configuration.
    """

    integration_id: str
    tenant: str
    connector_id: str
    connector_type: str
    config_json: str
    credentials_sealed: str | None
    versions: tuple[int, int, int]
    target_type: str | None = None
    target_config_json: str | None = None


def message_id_for(integration_id: str, record: SourceRecord) -> str:
    position = f"{integration_id}/{record.position}"
    return "msg_" + uuid.uuid5(_SOURCE_ID_NAMESPACE, position).hex[:24]


def routing_headers(binding: SourceBinding, record: SourceRecord) -> list[tuple[str, bytes]]:
    """The headers that route a source record through the pipeline as its integration's
    message, plus the source's own headers that travel with it."""
    headers = [
        ("ios-tenant", binding.tenant.encode()),
        ("ios-integration", binding.integration_id.encode()),
        ("ios-message-id", message_id_for(binding.integration_id, record).encode()),
        ("ios-source", f"{binding.connector_type.lower()}:{record.position}".encode()),
    ]
    return headers + [(name, record.headers[name]) for name in _PASSED_HEADERS
                      if name in record.headers]


def _polls(connector_type: str) -> bool:
    try:
        return registry.connector_class(connector_type).poll is not Connector.poll
    except registry.UnknownConnectorType:
        return False


def active_bindings(database: Engine) -> list[SourceBinding]:
    target = connectors.alias("target")
    query = (
        select(integrations.c.id, integrations.c.tenant_id, integrations.c.version,
               connectors.c.id.label("connector_id"), connectors.c.connector_type,
               connectors.c.config_json, connectors.c.credentials_sealed,
               connectors.c.version.label("cv"), target.c.connector_type.label("tt"),
               target.c.config_json.label("tc"), target.c.version.label("tv"))
        .join(connectors, connectors.c.id == integrations.c.source_connector_id)
        .outerjoin(target, and_(target.c.id == integrations.c.target_connector_id,
                                target.c.tenant_id == integrations.c.tenant_id,
                                target.c.deleted.is_(False)))
        .where(integrations.c.status == "ACTIVE", integrations.c.deleted.is_(False),
               connectors.c.deleted.is_(False), connectors.c.tenant_id == integrations.c.tenant_id)
    )
    with database.connect() as conn:
        rows = list(conn.execute(query))
    return [
        SourceBinding(r.id, r.tenant_id, r.connector_id, r.connector_type, r.config_json,
                      r.credentials_sealed, (r.version, r.cv, r.tv or 0), r.tt, r.tc)
        for r in rows if _polls(r.connector_type)
    ]


def on_platform_cluster(config: dict[str, Any], platform_bootstrap: str) -> bool:
    """A Kafka connector's topic is on the platform's own cluster (where the message events
    go): no ``bootstrapServers`` of its own, or the platform's."""
    return config.get("bootstrapServers") in (None, "", platform_bootstrap)


def writes_transactionally(config: dict[str, Any], platform_bootstrap: str) -> bool:
    """A Kafka target connector can join the platform's transactions: on its cluster, with
    the durability a transaction needs (acks=all), and not opted out (``exactlyOnce``)."""
    return (on_platform_cluster(config, platform_bootstrap)
            and config.get("acks", "all") == "all" and config.get("exactlyOnce", True))


def runs_exactly_once(binding: SourceBinding, platform_bootstrap: str) -> bool:
    """The rule (docs/exactly-once.md): a Kafka source and a Kafka target, both on the
    platform's cluster, so the target records, the message events, the dead letters and
    the source offsets can be committed in one transaction. Anything else (another
    cluster on either side, a non-Kafka target) runs at-least-once."""
    if binding.connector_type != "KAFKA" or binding.target_type != "KAFKA":
        return False
    source = json.loads(binding.config_json)
    target = json.loads(binding.target_config_json or "{}")
    return (on_platform_cluster(source, platform_bootstrap)
            and writes_transactionally(target, platform_bootstrap))
