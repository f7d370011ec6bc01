"""Authentication of ``/v1/*``, as pure ASGI middleware: an API key or a JWT bearer token.

A request carries ``X-Tenant-Id`` and either ``X-API-Key`` or ``Authorization: Bearer``. An API
key's SHA-256 is looked up among the non-revoked keys (only hashes are stored); a token is
verified by ``tokens.TokenVerifier`` and its tenant must exist. Either way the credential's
tenant must equal ``X-Tenant-Id``. Every failure gets the same 401, so the answer never tells
whether a key exists, or for which tenant.

What passes is put in the scope: the tenant, the ``Principal`` (credential id, roles,
environments) and the credential id alone under ``CREDENTIAL_SCOPE_KEY`` (what rate limits
key on). Which role a route needs is ``permissions``' business.

A key or tenant found valid is remembered for ``CACHE_SECONDS`` (one second): a database round
trip saved on nearly every request, at the price of a revocation taking up to that long to
reach this process. Failures are never cached. When a key was last used is written to
``api_key_usage`` at most once per ``USAGE_WRITE_SECONDS`` per key and process: not per
request, and not as an event.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Generic, TypeVar

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from integrationos.api.context import (
    CREDENTIAL_SCOPE_KEY,
    PRINCIPAL_SCOPE_KEY,
    TENANT_SCOPE_KEY,
    Principal,
)
from integrationos.api.errors import error_response
from integrationos.api.tokens import InvalidToken, TokenVerifier
from integrationos.store.tables import api_key_usage, api_keys, tenants

CACHE_SECONDS = 1.0
CACHE_SIZE = 10_000
USAGE_WRITE_SECONDS = 60.0

T = TypeVar("T")


def new_api_key(live: bool = True) -> str:
    """A fresh key; the prefix tells live keys from test keys at a glance (and to scanners)."""
    return ("ip_live_" if live else "ip_test_") + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _split(text: str) -> frozenset[str]:
    return frozenset(item for item in text.split(",") if item)


def _principal_of_key(engine: Engine, key_hash: str) -> Principal | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(api_keys).where(api_keys.c.key_hash == key_hash,
                                   api_keys.c.revoked.is_(False))
        ).first()
    if row is None:
        return None
    return Principal(tenant=row.tenant_id, credential=row.key_id, roles=_split(row.roles),
                     environments=_split(row.environments))


def _tenant_exists(engine: Engine, tenant: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(tenants.c.id).where(tenants.c.id == tenant)).first() is not None


def record_use(engine: Engine, key_id: str, tenant: str, at_ms: int) -> None:
    """Upsert the key's last-used time; a concurrent insert by another replica is as good."""
    with engine.begin() as conn:
        changed = conn.execute(update(api_key_usage).where(api_key_usage.c.key_id == key_id)
                               .values(last_used_at=at_ms)).rowcount
        if not changed:
            try:
                with conn.begin_nested():
                    conn.execute(insert(api_key_usage).values(
                        key_id=key_id, tenant_id=tenant, last_used_at=at_ms))
            except IntegrityError:
                pass


class _Recent(Generic[T]):
    """key -> (value, valid until), for ``CACHE_SECONDS``; bounded, cleared whole when full."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[T, float]] = {}

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, key: str, value: T) -> None:
        if len(self._entries) >= CACHE_SIZE:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + CACHE_SECONDS)


class _UsageClock:
    """When this process last wrote each key's last-used time; says when to write again."""

    def __init__(self) -> None:
        self._written: dict[str, float] = {}

    def due(self, key_id: str) -> bool:
        now = time.monotonic()
        if now - self._written.get(key_id, float("-inf")) < USAGE_WRITE_SECONDS:
            return False
        if len(self._written) >= CACHE_SIZE:
            self._written.clear()
        self._written[key_id] = now
        return True


class ApiKeyAuth:
    """Authenticates paths under ``prefix`` except the ``public`` ones (API reference,
    webhooks); a public entry ending in ``/`` covers every path under it."""

    def __init__(self, app: ASGIApp, prefix: str = "/v1/", public: frozenset[str] = frozenset()):
        self.app = app
        self.prefix = prefix
        self.public = public
        self._keys: _Recent[Principal] = _Recent()
        self._tenants: _Recent[bool] = _Recent()
        self._usage = _UsageClock()
        self._verifier: TokenVerifier | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefix) or self._public(path):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        tenant = headers.get("x-tenant-id")
        found = await self._authenticate(scope, headers) if tenant else None
        if found is not None and found.tenant == tenant:
            scope[TENANT_SCOPE_KEY] = found.tenant
            scope[PRINCIPAL_SCOPE_KEY] = found
            scope[CREDENTIAL_SCOPE_KEY] = found.credential
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "UNAUTHENTICATED",
            "send X-Tenant-Id and a valid credential for it: X-API-Key, or "
            "Authorization: Bearer <JWT>",
            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key", Bearer'},
        )
        await response(scope, receive, send)

    def _public(self, path: str) -> bool:
        return path in self.public or any(
            entry.endswith("/") and path.startswith(entry) for entry in self.public)

    async def _authenticate(self, scope: Scope, headers: Headers) -> Principal | None:
        key, authorization = headers.get("x-api-key"), headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        bearer = scheme.lower() == "bearer" and token.strip()
        if key and not authorization:
            return await self._by_key(scope, key)
        if bearer and not key:
            return await self._by_token(scope, token.strip())
        return None  # neither, or both (ambiguous: which one would be meant?)

    async def _by_key(self, scope: Scope, key: str) -> Principal | None:
        key_hash = hash_key(key)
        engine = scope["state"]["platform"].engine
        found = self._keys.get(key_hash)
        if found is None:
            found = await run_in_threadpool(_principal_of_key, engine, key_hash)
            if found is None:
                return None
            self._keys.put(key_hash, found)
        if self._usage.due(found.credential):
            await run_in_threadpool(record_use, engine, found.credential, found.tenant,
                                    int(time.time() * 1000))
        return found

    async def _by_token(self, scope: Scope, token: str) -> Principal | None:
        platform = scope["state"]["platform"]
        if self._verifier is None:
            self._verifier = TokenVerifier(platform.settings)
        if not self._verifier.enabled:
            return None
        try:
            found = await run_in_threadpool(self._verifier.verify, token)
        except InvalidToken:
            return None
        if self._tenants.get(found.tenant) is None:
            if not await run_in_threadpool(_tenant_exists, platform.engine, found.tenant):
                return None
            self._tenants.put(found.tenant, True)
        return found
