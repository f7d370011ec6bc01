"""API-key authentication of ``/v1/*``, as pure ASGI middleware.

A request carries ``X-API-Key`` and ``X-Tenant-Id``; the key's SHA-256 is looked up among the
tenant's non-revoked keys (only hashes are stored). Every failure gets the same 401, so the
answer never tells whether a key exists, or for which tenant.

A key found valid is remembered for ``KEY_CACHE_SECONDS`` (one second): a database round
trip saved on nearly every request, at the price of a revocation taking up to that long to
reach this process. Failures are never cached.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from integrationos.api.context import TENANT_SCOPE_KEY
from integrationos.api.errors import error_response
from integrationos.store.tables import api_keys


def new_api_key(live: bool = True) -> str:
    """A fresh key; the prefix tells live keys from test keys at a glance (and to scanners)."""
    return ("ip_live_" if live else "ip_test_") + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _tenant_of_key(engine: Engine, key_hash: str) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(api_keys.c.tenant_id).where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked.is_(False)
            )
        ).first()
    return row.tenant_id if row else None


KEY_CACHE_SECONDS = 1.0
KEY_CACHE_SIZE = 10_000


class _ValidKeys:
    """key hash -> (tenant, valid until), bounded; cleared whole when full."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}

    def get(self, key_hash: str) -> str | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, key_hash: str, tenant: str) -> None:
        if len(self._entries) >= KEY_CACHE_SIZE:
            self._entries.clear()
        self._entries[key_hash] = (tenant, time.monotonic() + KEY_CACHE_SECONDS)


class ApiKeyAuth:
    """Authenticates paths under ``prefix`` except the ``public`` ones (API reference,
    webhooks); a public entry ending in ``/`` covers every path under it."""

    def __init__(self, app: ASGIApp, prefix: str = "/v1/", public: frozenset[str] = frozenset()):
        self.app = app
        self.prefix = prefix
        self.public = public
        self._valid = _ValidKeys()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefix) or self._public(path):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key, tenant = headers.get("x-api-key"), headers.get("x-tenant-id")
        if key and tenant and await self._tenant_of(scope, hash_key(key)) == tenant:
            scope[TENANT_SCOPE_KEY] = tenant
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "UNAUTHENTICATED",
            "send a valid X-API-Key and the X-Tenant-Id it was issued for",
            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
        )
        await response(scope, receive, send)

    def _public(self, path: str) -> bool:
        return path in self.public or any(
            entry.endswith("/") and path.startswith(entry) for entry in self.public)

    async def _tenant_of(self, scope: Scope, key_hash: str) -> str | None:
        cached = self._valid.get(key_hash)
        if cached is not None:
            return cached
        engine = scope["state"]["platform"].engine
        found = await run_in_threadpool(_tenant_of_key, engine, key_hash)
        if found is not None:
            self._valid.put(key_hash, found)
        return found
