"""What every request handler reaches for: the platform's shared resources and the tenant.

The lifespan builds one ``Platform`` and Starlette hands it to each request through the
lifespan state; the auth middleware puts the authenticated tenant and ``Principal`` in the
scope.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine
from starlette.requests import Request

from integrationos.connectors.credentials import CredentialVault
from integrationos.engine.lookups import LookupService
from integrationos.settings import Settings
from integrationos.topics.producer import LogProducer

TENANT_SCOPE_KEY = "integrationos.tenant"
# A stable id of the credential behind a request (an API key id, or ``jwt:<sub>``): what
# per-client limits key on. Never the secret itself.
CREDENTIAL_SCOPE_KEY = "integrationos.credential"
PRINCIPAL_SCOPE_KEY = "integrationos.principal"

ROLES = ("admin", "developer", "operator", "viewer")
ALL_ENVIRONMENTS = frozenset({"DEV", "QA", "PROD"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant, the credential and what it may do."""

    tenant: str
    credential: str
    roles: frozenset[str]
    environments: frozenset[str] = ALL_ENVIRONMENTS


@dataclass
class Platform:
    """Resources opened once per process by the app's lifespan."""

    settings: Settings
    engine: Engine
    producer: LogProducer
    vault: CredentialVault
    lookups: LookupService
    config_topic: str
    ingest_topic: str
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def write_lock(self, tenant: str) -> asyncio.Lock:
        """Serialises a tenant's configuration writes in this process, so a check made on the
        read model (unique name, connector in use, current version) still holds when the
        event it guards is applied."""
        return self._locks.setdefault(tenant, asyncio.Lock())


def platform(request: Request) -> Platform:
    return request.state.platform


def tenant(request: Request) -> str:
    """The tenant authenticated by ``ApiKeyAuth``; every query is scoped to it."""
    return request.scope[TENANT_SCOPE_KEY]


def new_id(prefix: str) -> str:
    """``con_``/``trf_``/``int_``/``msg_`` + 24 hex characters of a random UUID."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def changed_by(request: Request) -> str | None:
    """Who makes this change, for the audit log: the credential id authentication recorded
    (an API key's id or ``jwt:<sub>``, never a secret)."""
    return request.scope.get(CREDENTIAL_SCOPE_KEY)
