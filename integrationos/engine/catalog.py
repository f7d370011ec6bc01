"""The worker's view of configuration, read from the projections and cached briefly.

Definitions are re-read at most every ``ttl`` seconds, so a change made through the API
reaches running workers within that time without a restart. A pause this worker appends
itself (FAIL_FAST) takes effect here at once, before the projection shows it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from integrationos.engine.error_strategy import DEFAULT_BACKOFF, Backoff, ErrorStrategy, parse
from integrationos.engine.flow import FlowDefinition
from integrationos.schemas.registry import resolve_or_explain
from integrationos.store.tables import (
    connectors,
    integrations,
    transformation_versions,
    transformations,
)


@dataclass(frozen=True)
class TargetRef:
    connector_id: str
    connector_type: str
    version: int
    config: dict[str, Any]
    credentials_sealed: str | None


PENDING_PAUSE_MAX_S = 60.0
"""How long a pause this worker appended overrides the projection at most. It normally ends
as soon as the projection shows the pause (well under a second); the bound only matters if
clocks disagree so much that a later resume looks older than the pause."""


@dataclass(frozen=True)
class IntegrationView:
    id: str
    tenant: str
    environment: str
    status: str
    strategy: ErrorStrategy
    flow: FlowDefinition
    target: TargetRef | None
    updated_at_ms: int = 0


def _backoff(row: Row) -> Backoff:
    """The integration's backoff (kept inside the limits), or the platform defaults."""
    if row.backoff_initial_ms is None:
        return DEFAULT_BACKOFF
    return Backoff(row.backoff_initial_ms, row.backoff_max_ms,
                   row.backoff_multiplier).clamped()


def _pinned_transformation(conn: Connection, tenant: str, transformation_id: str,
                           version: int | None) -> Row | None:
    """The version the integration pinned; the current one for integrations written before
    versions were pinned (their events carry no version)."""
    if version is None:
        return conn.execute(select(transformations).where(
            transformations.c.id == transformation_id, transformations.c.tenant_id == tenant,
        )).first()
    return conn.execute(select(transformation_versions).where(
        transformation_versions.c.transformation_id == transformation_id,
        transformation_versions.c.version == version,
        transformation_versions.c.tenant_id == tenant,
    )).first()


def _definition(conn: Connection, tenant: str, transformation: Row) -> FlowDefinition:
    """A transformation version with its schema references resolved through the registry
    (a name resolves to its latest version at load time, ``name@n`` to version n)."""
    source, source_note = resolve_or_explain(conn, tenant, transformation.source_schema)
    target, target_note = resolve_or_explain(conn, tenant, transformation.target_schema)
    return FlowDefinition(transformation.expression, source, target,
                          _skipped(source_note), _skipped(target_note))


def flow_definition(conn: Connection, tenant: str, transformation_id: str | None,
                    transformation_version: int | None, expression: str | None
                    ) -> FlowDefinition:
    """The flow an integration definition runs: its pinned transformation version, or its
    inline expression. Also what the promotion gate runs on a version not yet live."""
    if not transformation_id:
        return FlowDefinition(expression)
    trf = _pinned_transformation(conn, tenant, transformation_id, transformation_version)
    if trf is None:
        return FlowDefinition(None, missing=f"transformation "
                              f"{transformation_id}@{transformation_version}")
    return _definition(conn, tenant, trf)


def _skipped(note: str | None) -> str | None:
    return None if note is None else f"{note}: not validated"


class FlowCatalog:
    def __init__(self, engine: Engine, ttl: float = 1.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, IntegrationView | None]] = {}
        # (tenant, integration) -> (the pause event's time in ms, monotonic time it was made)
        self._pausing: dict[tuple[str, str], tuple[int, float]] = {}

    def cached(self, tenant: str, integration_id: str) -> tuple[bool, IntegrationView | None]:
        """(True, view) when a fresh answer is in memory (the view may be None: no such
        integration), so the hot path can skip a thread hop; (False, None) otherwise."""
        hit = self._cache.get((tenant, integration_id))
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return True, hit[1]
        return False, None

    def lookup(self, tenant: str, integration_id: str) -> IntegrationView | None:
        found, view = self.cached(tenant, integration_id)
        if found:
            return view
        key = (tenant, integration_id)
        view = self._with_pending_pause(key, self._load(tenant, integration_id))
        self._cache[key] = (time.monotonic(), view)
        return view

    def pause_locally(self, tenant: str, integration_id: str, event_ms: int) -> bool:
        """Treat the integration as PAUSED in this worker from now on, until the projection
        shows the pause (event time ``event_ms``) or anything later. True the first time,
        when the caller should append the pause; False while one is already pending, so
        many messages failing at once append one pause per worker."""
        key = (tenant, integration_id)
        if key in self._pausing:
            return False
        self._pausing[key] = (event_ms, time.monotonic())
        hit = self._cache.get(key)
        if hit is not None and hit[1] is not None:
            self._cache[key] = (hit[0], replace(hit[1], status="PAUSED"))
        return True

    def _with_pending_pause(self, key: tuple[str, str], view: IntegrationView | None
                            ) -> IntegrationView | None:
        """The projection's view, PAUSED while a pause this worker appended is not in it yet."""
        pending = self._pausing.get(key)
        if pending is None:
            return view
        event_ms, since = pending
        if (view is None or view.status == "PAUSED" or view.updated_at_ms >= event_ms
                or time.monotonic() - since > PENDING_PAUSE_MAX_S):
            self._pausing.pop(key, None)
            return view
        return replace(view, status="PAUSED")

    def _load(self, tenant: str, integration_id: str) -> IntegrationView | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(integrations).where(
                    integrations.c.id == integration_id,
                    integrations.c.tenant_id == tenant,
                    integrations.c.deleted.is_(False),
                )
            ).first()
            if row is None:
                return None
            flow = flow_definition(conn, tenant, row.transformation_id,
                                   row.transformation_version, row.expression)
            target = None
            if row.target_connector_id:
                con = conn.execute(
                    select(connectors).where(
                        connectors.c.id == row.target_connector_id,
                        connectors.c.tenant_id == tenant,
                        connectors.c.deleted.is_(False),
                    )
                ).first()
                if con is not None:
                    target = TargetRef(con.id, con.connector_type, con.version,
                                       json.loads(con.config_json), con.credentials_sealed)
        return IntegrationView(
            id=row.id,
            tenant=tenant,
            environment=row.environment,
            status=row.status,
            strategy=parse(row.error_strategy, _backoff(row)),
            flow=flow,
            target=target,
            updated_at_ms=row.updated_at,
        )
