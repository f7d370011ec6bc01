"""Tenant administration from the command line: events on the config topic."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select

from integrationos import plans
from integrationos.api.issuance import issue
from integrationos.cli.api_keys import append_and_wait
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import tenants
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

PLANS = tuple(plans.PLANS)


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    api_key: str = field(repr=False)
    applied: bool


def tenant_id_for(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise ValueError("a tenant name needs at least one letter or digit")
    return slug[:64]


def create_tenant(settings: Settings, name: str, plan: str, wait: float = 30) -> NewTenant:
    """Append TenantCreated and its first key's ApiKeyIssued (role admin, every environment),
    then wait for a worker to project them.

    The key exists only in this result (the log holds its hash): the caller shows it once.
    """
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")
    tenant_id = tenant_id_for(name)
    first_key = issue(tenant_id, "first key", ["admin"])
    applied = append_and_wait(settings, [
        Event(t.TENANT_CREATED, tenant_id, tenant_id,
              {"id": tenant_id, "name": name, "plan": plan}),
        first_key.event,
    ], wait)
    return NewTenant(tenant_id, first_key.key, applied)


def change_plan(settings: Settings, tenant_id: str, plan: str,
                overrides: dict[str, int | None], wait: float = 30) -> bool:
    """Append ``tenant.plan_changed`` (the plan and every override: one not given goes back
    to the plan's value) and wait for a worker to project it; True once applied.

    Messages parked over the old quota are released by the worker (engine/quota_release.py)
    once the new limits allow them."""
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")
    problems = plans.override_problems(overrides)
    if problems:
        raise ValueError("; ".join(problems))
    engine = open_database(settings.database_url)
    try:
        with engine.connect() as conn:
            if conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id)).first() is None:
                raise ValueError(f"no tenant {tenant_id!r}")
    finally:
        engine.dispose()
    return append_and_wait(settings, [Event(
        t.TENANT_PLAN_CHANGED, tenant_id, tenant_id,
        {"id": tenant_id, "plan": plan, **dict.fromkeys(plans.OVERRIDE_FIELDS), **overrides})],
        wait)
