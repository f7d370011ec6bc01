"""Helpers for the authorization tests: keys per role, and a log that needs no broker."""

from __future__ import annotations

import asyncio
import re

from integrationos.api.app import ROUTES
from integrationos.store.projector import applied_through
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import Seeder

ROLE_KEYS = {role: f"ip_test_{role}-key-0123456789" for role in
             ("admin", "developer", "operator", "viewer")}


def headers(role: str) -> dict[str, str]:
    """acme's headers with its key of ``role`` (see ``seed_role_keys``)."""
    return {"X-API-Key": ROLE_KEYS[role], "X-Tenant-Id": "acme"}


def seed_role_keys(seed: Seeder) -> None:
    """One acme key per role (ids ``key_<role>``), every environment; acme without a
    request rate limit, since these tests call every route (rate limits: test_plans.py)."""
    for role, key in ROLE_KEYS.items():
        seed.key("acme", f"key_{role}", key, [role])
    seed.apply(Event(t.TENANT_PLAN_CHANGED, "acme", "acme", {
        "id": "acme", "plan": "enterprise", "messagesPerMonth": None,
        "requestsPerMinute": 100_000, "connectors": None, "retentionDays": None}))


def protected_operations() -> set[tuple[str, str]]:
    """(METHOD, path template) of every authenticated route of the app."""
    public = {"/v1/openapi.json", "/v1/docs"}
    return {(method, route.path) for route in ROUTES for method in route.methods
            if method != "HEAD" and route.path not in public
            and not route.path.startswith("/v1/webhooks/")}


def concrete(path: str) -> str:
    """The template with each ``{param}`` replaced: ids by one that names nothing."""
    values = {"env": "DEV", "version": "1", "name": "ORG", "type": "HTTP"}
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), "nope_0123"), path)


class InProcessLog:
    """Stands in for the broker: an append is applied at once by the real projector, so the
    write path (append, wait for the projection) runs end to end in-process."""

    def __init__(self, seed: Seeder) -> None:
        self.seed = seed
        self.appended: list[Event] = []

    def append(self, topic: str, event: Event, partition: int | None = None
               ) -> asyncio.Future[tuple[int, int]]:
        offset = applied_through(self.seed.engine, topic, 0)
        self.seed.apply(event, topic=topic)
        self.appended.append(event)
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        future.set_result((0, offset))
        return future
