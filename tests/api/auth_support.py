"""Helpers for the authorization tests: keys per role, and a log that needs no broker."""

from __future__ import annotations

import asyncio
import re

from integrationos.api.app import ROUTES
from integrationos.store.projector import applied_through
from integrationos.topics.envelope import Event
from tests.api.conftest import Seeder

ROLE_KEYS = {role: f"ip_test_{role}-key-0123456789" for role in
             ("admin", "developer", "operator", "viewer")}


def headers(role: str, tenant: str = "acme") -> dict[str, str]:
    return {"X-API-Key": ROLE_KEYS[role] + ("" if tenant == "acme" else tenant),
            "X-Tenant-Id": tenant}


def seed_role_keys(seed: Seeder, tenant: str = "acme") -> None:
    """One key per role for ``tenant`` (ids ``key_<role>``), every environment."""
    for role, key in ROLE_KEYS.items():
        suffix = "" if tenant == "acme" else tenant
        seed.key(tenant, f"key_{role}{suffix}", key + suffix, [role])


def protected_operations() -> set[tuple[str, str]]:
    """(METHOD, path template) of every authenticated route of the app."""
    public = {"/v1/openapi.json", "/v1/docs"}
    return {(method, route.path) for route in ROUTES for method in route.methods
            if method != "HEAD" and route.path not in public
            and not route.path.startswith("/v1/webhooks/")}


def concrete(path: str, ids: dict[str, str] | None = None) -> str:
    """The template with each ``{param}`` replaced (``env`` by DEV unless given)."""
    values = {"env": "DEV", "version": "1", "name": "ORG", "type": "HTTP"} | (ids or {})
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
