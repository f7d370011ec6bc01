"""Plans and their limits, shared by the API (rate limits, quota, connector count, usage) and
the worker (parking over quota, retention purge).

A tenant's limits are its plan's, with per-tenant overrides on top (``tenant.plan_changed``
events, projected into ``tenant_limits``). ``None`` means unlimited. Enterprise's "custom"
request rate and retention have defaults here, changed per tenant by an override.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select

from integrationos.store.tables import tenant_limits, tenants
from integrationos.topics.catalog import LONGEST_RETENTION_DAYS

MAX_RETENTION_DAYS = LONGEST_RETENTION_DAYS
"""The longest retention any tenant can have (overrides included): the message-events and
dead-letter topics keep records this long, so purged read models can always be rebuilt."""


@dataclass(frozen=True)
class Limits:
    """What a tenant may use; ``None``: unlimited."""

    plan: str
    messages_per_month: int | None
    requests_per_minute: int
    connectors: int | None
    retention_days: int


PLANS: dict[str, Limits] = {
    "free": Limits("free", 10_000, 60, 3, 7),
    "pro": Limits("pro", 500_000, 300, 20, 30),
    # "custom" in the plan table: these defaults until an override says otherwise.
    "enterprise": Limits("enterprise", None, 1_000, None, MAX_RETENTION_DAYS),
}

UNLIMITED = -1
"""How an override says "unlimited" for messages per month or connectors (null in the event
means "the plan's value")."""

OVERRIDE_FIELDS = {
    "messagesPerMonth": "messages_per_month",
    "requestsPerMinute": "requests_per_minute",
    "connectors": "connectors",
    "retentionDays": "retention_days",
}
"""Event field -> ``Limits``/``tenant_limits`` column of each override."""


def plan_named(name: str) -> Limits:
    """The plan by name in any case (older records say ``FREE``); unknown names get Free's
    limits, the safe default, rather than none."""
    return PLANS.get(name.lower(), PLANS["free"])


def override_problems(overrides: dict[str, int | None]) -> list[str]:
    """Why these overrides cannot be applied (empty if they can)."""
    problems = []
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in OVERRIDE_FIELDS:
            problems.append(f"unknown override {name}")
        elif name in ("messagesPerMonth", "connectors") and value == UNLIMITED:
            continue
        elif name == "retentionDays" and not 1 <= value <= MAX_RETENTION_DAYS:
            problems.append(f"retentionDays must be 1 to {MAX_RETENTION_DAYS}")
        elif value < 1 or value > 2**31 - 1:
            problems.append(f"{name} must be a positive integer"
                            + (" or -1 (unlimited)" if name != "requestsPerMinute" else ""))
    return problems


def apply_overrides(base: Limits, row: Any) -> Limits:
    """``base`` with the non-null override columns of a ``tenant_limits`` row."""
    changes: dict[str, int | None] = {}
    for column in OVERRIDE_FIELDS.values():
        value = getattr(row, column)
        if column == "requests_per_minute" and value is not None and value < 1:
            continue  # never unlimited (the CLI refuses it); a record that says so anyway
            # must not leave the rate limiter without a number
        if value is not None:
            changes[column] = None if value == UNLIMITED else value
    return replace(base, **changes)


def limits_of(conn: Connection, tenant_id: str) -> Limits:
    """The tenant's current limits from the read models (Free's for an unknown tenant)."""
    plan = conn.execute(select(tenants.c.plan).where(tenants.c.id == tenant_id)).scalar()
    base = plan_named(plan or "free")
    row = conn.execute(select(tenant_limits).where(
        tenant_limits.c.tenant_id == tenant_id)).first()
    return base if row is None else apply_overrides(base, row)
