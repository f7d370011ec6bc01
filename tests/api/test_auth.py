"""API-key authentication: every /v1 route but the reference needs a valid key + tenant."""

from __future__ import annotations

import re

import pytest

from integrationos.api.auth import hash_key, new_api_key
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, ACME_KEY, GLOBEX_KEY, assert_error


@pytest.mark.parametrize("headers", [
    {},
    {"X-API-Key": ACME_KEY},
    {"X-Tenant-Id": "acme"},
    {"X-API-Key": "ip_live_wrong", "X-Tenant-Id": "acme"},
    {"X-API-Key": GLOBEX_KEY, "X-Tenant-Id": "acme"},
    {"X-API-Key": ACME_KEY, "X-Tenant-Id": "globex"},
    {"X-API-Key": ACME_KEY, "X-Tenant-Id": "ACME"},
])
def test_requests_without_a_matching_key_and_tenant_are_401(client, headers):
    for method, path in [("GET", "/v1/connectors"), ("POST", "/v1/connectors"),
                         ("GET", "/v1/nowhere"), ("DELETE", "/v1/integrations/int_x")]:
        response = client.request(method, path, headers=headers)
        error = assert_error(response, 401, "UNAUTHENTICATED")
        assert ACME_KEY not in response.text and "globex" not in error["message"]


def test_a_valid_key_for_its_tenant_is_accepted(client):
    assert client.get("/v1/connectors", headers=ACME).status_code == 200


def test_a_revoked_key_is_refused(client, seed):
    seed.apply(Event(t.API_KEY_REVOKED, "acme", "key_acme", {"keyId": "key_acme"}))
    assert_error(client.get("/v1/connectors", headers=ACME), 401, "UNAUTHENTICATED")


def test_the_reference_is_public(client):
    assert client.get("/v1/openapi.json").status_code == 200
    assert client.get("/v1/docs").status_code == 200


def test_new_keys_have_the_documented_form_and_are_stored_as_sha256():
    live, test = new_api_key(), new_api_key(live=False)
    assert re.fullmatch(r"ip_live_[A-Za-z0-9_-]{43}", live)
    assert test.startswith("ip_test_") and live != new_api_key()
    assert re.fullmatch(r"[0-9a-f]{64}", hash_key(live))
