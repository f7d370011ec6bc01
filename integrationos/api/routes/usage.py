"""The tenant's plan against what it uses: ``GET /v1/usage``, and the checks that refuse
what a plan does not allow (monthly messages on HTTP ingest, the number of connectors).

Limits are the plan's with the tenant's overrides (integrationos/plans.py); ``null`` in a
response means unlimited.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.context import Platform, platform, tenant
from integrationos.api.errors import ApiError
from integrationos.api.routing import resource
from integrationos.api.serializers import iso
from integrationos.plans import Limits, limits_of
from integrationos.quota import QuotaState, quota_state
from integrationos.store.tables import connectors
from integrationos.store.usage import QUOTA_EXCEEDED, month_of


async def ensure_quota(p: Platform, tenant_id: str, count: int = 1) -> None:
    """429 ``QUOTA_EXCEEDED`` if ``count`` more messages would pass the monthly quota (a
    CSV file counts each record, and is refused whole rather than cut)."""
    state = await run_in_threadpool(quota_state, p.engine, tenant_id)
    if state.allows(count):
        return
    retry_after = max((state.resets_at_ms - int(time.time() * 1000)) // 1000, 1)
    raise ApiError(429, QUOTA_EXCEEDED, f"the monthly quota of {state.limit} messages is "
                   f"used up; it resets at {iso(state.resets_at_ms)}", [{
                       "limit": state.limit, "used": state.used, "requested": count,
                       "resetsAt": iso(state.resets_at_ms)}],
                   headers={"Retry-After": str(retry_after)})


def _connector_count(engine: Engine, tenant_id: str) -> tuple[Limits, int]:
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(connectors).where(
            connectors.c.tenant_id == tenant_id, connectors.c.deleted.is_(False))).scalar_one()
        return limits_of(conn, tenant_id), count


async def ensure_connector_slot(p: Platform, tenant_id: str) -> None:
    """409 ``PLAN_LIMIT_REACHED`` when the tenant has as many connectors as its plan allows
    (called under the tenant's write lock, so two creates cannot both take the last one)."""
    limits, count = await run_in_threadpool(_connector_count, p.engine, tenant_id)
    if limits.connectors is not None and count >= limits.connectors:
        raise ApiError(409, "PLAN_LIMIT_REACHED", f"the {limits.plan} plan allows "
                       f"{limits.connectors} connectors; delete one or change plan", [{
                           "field": "connectors", "limit": limits.connectors, "used": count}])


def _usage(engine: Engine, tenant_id: str) -> tuple[Limits, int, QuotaState]:
    limits, count = _connector_count(engine, tenant_id)
    return limits, count, quota_state(engine, tenant_id)


async def get_usage(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    limits, connector_count, quota = await run_in_threadpool(_usage, p.engine, tenant_id)
    body: dict[str, Any] = {
        "plan": limits.plan,
        "month": month_of(quota.resets_at_ms - 1),
        "messages": {"used": quota.used, "limit": quota.limit,
                     "remaining": None if quota.limit is None
                     else max(quota.limit - quota.used, 0),
                     "resetsAt": iso(quota.resets_at_ms)},
        "requestsPerMinute": {"limit": limits.requests_per_minute},
        "connectors": {"used": connector_count, "limit": limits.connectors},
        "retentionDays": limits.retention_days,
    }
    return JSONResponse(body)


routes = [resource("/v1/usage", GET=get_usage)]
