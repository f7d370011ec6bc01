"""What promotion, versions, test cases and history share: an integration's lineage (the
integrations of every stage promoted from one DEV integration), the versions table, and
who made a request.

A lineage is named by its root: the integration that was first created (normally in DEV).
A promoted integration records its root in ``integration_lineages``; an integration absent
there is its own root.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import Row, or_, select
from starlette.requests import Request

from integrationos.api.context import CREDENTIAL_SCOPE_KEY, Platform
from integrationos.api.db import PageRequest, fetch_all, first, live
from integrationos.api.errors import ApiError
from integrationos.store.tables import (
    integration_lineages,
    integration_versions,
    integrations,
)

STAGES = ("DEV", "QA", "PROD")
NEXT_STAGE = {"DEV": "QA", "QA": "PROD"}


async def actor(request: Request) -> str:
    """Who is asking, for the audit log: the credential id the auth layer put in the scope
    (an API key's id or ``jwt:<sub>``, never a secret)."""
    return request.scope[CREDENTIAL_SCOPE_KEY]


async def lineage_of(p: Platform, tenant_id: str, integration_id: str) -> str:
    row = await first(p.engine, select(integration_lineages.c.lineage_id).where(
        integration_lineages.c.integration_id == integration_id,
        integration_lineages.c.tenant_id == tenant_id))
    return integration_id if row is None else row.lineage_id


async def stage_integrations(p: Platform, tenant_id: str, lineage_id: str) -> dict[str, Row]:
    """The live integration of each stage of the lineage, by environment."""
    linked = select(integration_lineages.c.integration_id).where(
        integration_lineages.c.lineage_id == lineage_id,
        integration_lineages.c.tenant_id == tenant_id)
    rows = await fetch_all(p.engine, live(integrations, tenant_id, or_(
        integrations.c.id == lineage_id, integrations.c.id.in_(linked))
    ).order_by(integrations.c.created_at))
    return {row.environment: row for row in rows}


async def find_integration_version(p: Platform, tenant_id: str, integration_id: str,
                                   version: int) -> Row | None:
    return await first(p.engine, select(integration_versions).where(
        integration_versions.c.integration_id == integration_id,
        integration_versions.c.version == version,
        integration_versions.c.tenant_id == tenant_id))


def definition(version: Row) -> dict[str, Any]:
    return json.loads(version.definition_json)


def seq_cursor(value: int) -> str:
    """An opaque cursor after ``value`` that ``page_request`` decodes as ``(value, "")``."""
    return base64.urlsafe_b64encode(f"{value}:".encode()).decode()


def after(wanted: PageRequest) -> int:
    return -1 if wanted.after is None else wanted.after[0]


def unprocessable(field: str, message: str, text: str = "the request cannot be carried out"
                  ) -> ApiError:
    return ApiError(422, "VALIDATION_FAILED", text, [{"field": field, "message": message}])
