"""/v1/api-keys: issued once, listed without secrets, revoked within a second; and what the
auth middleware puts in the scope for the layers after it (rate limits)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from integrationos.api import auth
from integrationos.api.auth import ApiKeyAuth, hash_key
from integrationos.api.context import CREDENTIAL_SCOPE_KEY, PRINCIPAL_SCOPE_KEY
from integrationos.store.tables import api_keys
from integrationos.topics import event_types as t
from tests.api.auth_support import InProcessLog, headers, seed_role_keys
from tests.api.conftest import ACME, ACME_KEY, GLOBEX, assert_error


@pytest.fixture
def log(client, seed) -> InProcessLog:
    in_process = InProcessLog(seed)
    client.app_state["platform"].producer = in_process
    return in_process


def _issue(client, **body) -> dict:
    response = client.post("/v1/api-keys", headers=ACME,
                           json={"name": "ci", "roles": ["operator"]} | body)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_key_is_shown_once_and_stored_only_as_a_hash(client, log, seed):
    issued = _issue(client, environments=["QA", "DEV"], live=False)
    assert re.fullmatch(r"ip_test_[A-Za-z0-9_-]{43}", issued["key"])
    assert issued["prefix"] == issued["key"][:12]
    assert (issued["roles"], issued["environments"]) == (["operator"], ["DEV", "QA"])
    event = log.appended[-1]
    assert event.type == t.API_KEY_ISSUED and event.data["keyHash"] == hash_key(issued["key"])
    assert issued["key"] not in repr(event.data)
    with seed.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(api_keys))]
    assert issued["key"] not in repr(rows)

    listed = client.get("/v1/api-keys", headers=ACME)
    assert listed.status_code == 200
    assert issued["key"] not in listed.text and hash_key(issued["key"]) not in listed.text
    mine = [k for k in listed.json()["data"] if k["id"] == issued["id"]]
    assert mine and set(mine[0]) == {"id", "name", "prefix", "roles", "environments", "live",
                                     "revoked", "createdAt", "lastUsedAt"}
    assert mine[0]["lastUsedAt"] is None and mine[0]["revoked"] is False


def test_the_new_key_works_with_its_roles_at_once(client, log):
    key = {"X-API-Key": _issue(client)["key"], "X-Tenant-Id": "acme"}
    assert client.get("/v1/connectors", headers=key).status_code == 200
    assert_error(client.post("/v1/connectors", headers=key, json={}), 403, "FORBIDDEN")
    assert_error(client.get("/v1/api-keys", headers=key), 403, "FORBIDDEN")


def test_last_use_is_recorded_at_most_once_a_minute(client, log, monkeypatch):
    issued = _issue(client)
    key = {"X-API-Key": issued["key"], "X-Tenant-Id": "acme"}
    writes = []
    real = auth.record_use
    monkeypatch.setattr(auth, "record_use", lambda *a: writes.append(a) or real(*a))
    for _ in range(5):
        assert client.get("/v1/connectors", headers=key).status_code == 200
    assert len([w for w in writes if w[1] == issued["id"]]) == 1
    listed = {k["id"]: k for k in client.get("/v1/api-keys", headers=ACME).json()["data"]}
    assert listed[issued["id"]]["lastUsedAt"] is not None


def test_revocation_takes_effect_within_a_second(client, log):
    issued = _issue(client)
    key = {"X-API-Key": issued["key"], "X-Tenant-Id": "acme"}
    assert client.get("/v1/connectors", headers=key).status_code == 200
    assert client.delete(f"/v1/api-keys/{issued['id']}", headers=ACME).status_code == 204
    time.sleep(auth.CACHE_SECONDS + 0.05)
    assert_error(client.get("/v1/connectors", headers=key), 401, "UNAUTHENTICATED")
    listed = {k["id"]: k for k in client.get("/v1/api-keys", headers=ACME).json()["data"]}
    assert listed[issued["id"]]["revoked"] is True
    # idempotent
    assert client.delete(f"/v1/api-keys/{issued['id']}", headers=ACME).status_code == 204
    assert auth.CACHE_SECONDS <= 1.0


def test_another_tenants_key_cannot_be_seen_or_revoked(client, log):
    issued = _issue(client)
    assert issued["id"] not in client.get("/v1/api-keys", headers=GLOBEX).text
    assert_error(client.delete(f"/v1/api-keys/{issued['id']}", headers=GLOBEX),
                 404, "NOT_FOUND")


@pytest.mark.parametrize("body", [
    {"name": "x"}, {"name": "x", "roles": []}, {"name": "x", "roles": ["root"]},
    {"name": "x", "roles": ["viewer"], "environments": ["STAGING"]},
    {"name": "x", "roles": ["viewer"], "environments": []},
    {"name": "x", "roles": ["viewer"], "keyHash": "00" * 32},
])
def test_invalid_requests_are_422(client, log, body):
    assert_error(client.post("/v1/api-keys", headers=ACME, json=body), 422,
                 "VALIDATION_FAILED")
    assert not log.appended


def test_only_admins_manage_keys(client, seed):
    seed_role_keys(seed)
    for role in ("developer", "operator", "viewer"):
        error = assert_error(client.post("/v1/api-keys", headers=headers(role),
                                         json={"name": "x", "roles": ["admin"]}),
                             403, "FORBIDDEN")
        assert error["details"] == [{"requiredRole": "admin"}]


def test_the_scope_carries_the_tenant_the_credential_and_the_principal(settings, seed):
    """What later layers (rate limits) key on: the key's id, never the key."""

    async def whoami(request: Request) -> JSONResponse:
        principal = request.scope[PRINCIPAL_SCOPE_KEY]
        return JSONResponse({"credential": request.scope[CREDENTIAL_SCOPE_KEY],
                             "roles": sorted(principal.roles),
                             "environments": sorted(principal.environments)})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict]:
        yield {"platform": SimpleNamespace(engine=seed.engine, settings=settings)}

    app = Starlette(routes=[Route("/v1/whoami", whoami)], lifespan=lifespan,
                    middleware=[Middleware(ApiKeyAuth)])
    with TestClient(app) as test_client:
        body = test_client.get("/v1/whoami", headers=ACME).json()
    assert body == {"credential": "key_acme", "roles": ["admin"],
                    "environments": ["DEV", "PROD", "QA"]}
    assert ACME_KEY not in str(body)
