"""Roles and environments: the whole matrix, driven by ``permissions.RULES``."""

from __future__ import annotations

import pytest

from integrationos.api.permissions import GRANTS, RULES
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.auth_support import (
    ROLE_KEYS,
    concrete,
    headers,
    protected_operations,
    seed_role_keys,
)
from tests.api.conftest import assert_error

ROLES = sorted(ROLE_KEYS)


def test_every_authenticated_route_has_exactly_one_rule():
    assert set(RULES) == protected_operations()


def test_the_roles_nest_as_documented():
    assert GRANTS["viewer"] < GRANTS["operator"] < GRANTS["admin"]
    assert GRANTS["viewer"] < GRANTS["developer"] < GRANTS["admin"]
    assert "developer" not in GRANTS["operator"] and "operator" not in GRANTS["developer"]


@pytest.fixture
def keyed(seed):
    seed_role_keys(seed)
    return seed


@pytest.mark.parametrize("role", ROLES)
def test_the_whole_matrix(client, keyed, role):
    """Each role on each route: 403 naming the role needed iff the role does not grant it;
    otherwise the request reaches its handler (nonexistent ids: 404, empty bodies: 4xx)."""
    for (method, path), rule in sorted(RULES.items()):
        response = client.request(method, concrete(path), headers=headers(role), json={})
        label = f"{role} {method} {path} -> {response.status_code} {response.text[:200]}"
        if rule.role in GRANTS[role]:
            assert response.status_code not in (401, 403), label
            assert response.status_code < 500 or response.status_code == 503, label
        else:
            error = assert_error(response, 403, "FORBIDDEN")
            assert error["details"] == [{"requiredRole": rule.role}], label


def test_head_needs_what_get_needs(client, keyed):
    assert client.head("/v1/connectors", headers=headers("viewer")).status_code == 200
    assert_error(client.get("/v1/api-keys", headers=headers("operator")), 403, "FORBIDDEN")
    assert client.head("/v1/api-keys", headers=headers("operator")).status_code == 403


@pytest.fixture
def environments(keyed):
    keyed.integration("acme", "int_dev", "d", environment="DEV")
    keyed.integration("acme", "int_prod", "p", environment="PROD")
    keyed.key("acme", "key_devonly", "ip_test_dev-only-0123456789", ["admin"], ("DEV",))
    return keyed


DEV_ONLY = {"X-API-Key": "ip_test_dev-only-0123456789", "X-Tenant-Id": "acme"}
LOG_DOWN = 503  # authorised: the request got as far as the (absent) log


def test_a_developer_changes_dev_and_qa_but_not_prod(client, environments):
    dev = headers("developer")
    assert client.put("/v1/environments/QA/variables/ORG", headers=dev,
                      json={"value": "x"}).status_code == LOG_DOWN
    assert client.patch("/v1/integrations/int_dev", headers=dev,
                        json={"name": "d2"}).status_code == LOG_DOWN
    for method, path, body in [
        ("PUT", "/v1/environments/prod/variables/ORG", {"value": "x"}),
        ("DELETE", "/v1/environments/PROD/variables/ORG", None),
        ("PATCH", "/v1/integrations/int_prod", {"name": "p2"}),
        ("DELETE", "/v1/integrations/int_prod", None),
        ("POST", "/v1/integrations", {"name": "n", "environment": "PROD"}),
        ("POST", "/v1/flows", {"source": "a", "target": "b", "environment": "PROD"}),
        ("POST", "/v1/sandbox/execute", {"integrationId": "int_prod", "payload": {}}),
        ("POST", "/v1/integrations/int_dev/promote", {"from": "QA", "to": "PROD"}),
        ("POST", "/v1/integrations/int_prod/rollback", {}),
        ("POST", "/v1/integrations/int_prod/test-cases",
         {"name": "t", "payload": {}, "expected": {}}),
    ]:
        error = assert_error(client.request(method, path, headers=dev, json=body),
                             403, "FORBIDDEN")
        assert error["details"] == [{"requiredRole": "admin", "environment": "PROD"}], path
    # promoting DEV -> QA is a developer's: the request reaches the promotion's own checks
    promoted = client.post("/v1/integrations/int_dev/promote", headers=dev,
                           json={"from": "DEV", "to": "QA"})
    assert promoted.status_code not in (401, 403), promoted.text
    # reading PROD is a viewer's right, which a developer has
    assert client.get("/v1/integrations/int_prod", headers=dev).status_code == 200
    assert client.get("/v1/environments/PROD/variables", headers=dev).status_code == 200


def test_operators_and_admins_act_in_prod(client, environments):
    assert client.post("/v1/integrations/int_prod/pause",
                       headers=headers("operator")).status_code == LOG_DOWN
    assert client.put("/v1/environments/PROD/variables/ORG", headers=headers("admin"),
                      json={"value": "x"}).status_code == LOG_DOWN


def test_a_key_limited_to_dev_is_refused_elsewhere_even_as_admin(client, environments):
    assert client.get("/v1/integrations/int_dev", headers=DEV_ONLY).status_code == 200
    for method, path, body in [
        ("GET", "/v1/integrations/int_prod", None),
        ("GET", "/v1/integrations/int_prod/status", None),
        ("POST", "/v1/integrations/int_prod/messages", {"a": 1}),
        ("GET", "/v1/environments/QA/variables", None),
        ("POST", "/v1/integrations", {"name": "n", "environment": "QA"}),
        ("POST", "/v1/sandbox/execute", {"integrationId": "int_prod", "payload": {}}),
    ]:
        error = assert_error(client.request(method, path, headers=DEV_ONLY, json=body),
                             403, "FORBIDDEN")
        assert error["details"][0]["environment"] in ("PROD", "QA"), path


def test_a_key_limited_to_dev_lists_integrations_of_dev_only(client, environments):
    listed = client.get("/v1/integrations?environment=dev", headers=DEV_ONLY)
    assert [i["id"] for i in listed.json()["data"]] == ["int_dev"]
    error = assert_error(client.get("/v1/integrations", headers=DEV_ONLY), 403, "FORBIDDEN")
    assert error["details"] == [{"environment": "*"}]
    assert_error(client.get("/v1/integrations?environment=PROD", headers=DEV_ONLY),
                 403, "FORBIDDEN")
    every = client.get("/v1/integrations", headers=headers("viewer")).json()["data"]
    assert {i["id"] for i in every} == {"int_dev", "int_prod"}


def test_an_unknown_id_or_environment_is_still_a_404_not_a_403(client, environments):
    assert_error(client.get("/v1/integrations/int_nope", headers=DEV_ONLY), 404, "NOT_FOUND")
    assert_error(client.get("/v1/environments/STAGING/variables", headers=DEV_ONLY),
                 404, "NOT_FOUND")
    # a body the handler will refuse is the handler's to refuse
    for body in (b"{oops", b"[" * 8000 + b"]" * 8000):
        assert_error(client.post("/v1/integrations", headers=DEV_ONLY, content=body),
                     400, "MALFORMED_JSON")


def _dead_letter(seed, message_id: str, integration_id: str) -> None:
    common = {"messageId": message_id, "integrationId": integration_id}
    seed.message_events(
        Event(t.MESSAGE_RECEIVED, "acme", message_id, common | {
            "key": None, "payloadJson": "{}", "source": "api",
            "contentType": "application/json"}),
        Event(t.MESSAGE_DEAD_LETTERED, "acme", message_id, common | {
            "stage": "deliver", "code": "HTTP_400", "message": "bad", "dlqTopic": "t"}))


def test_a_key_limited_to_dev_sees_and_acts_on_dev_dead_letters_only(client, environments):
    _dead_letter(environments, "msg_dev", "int_dev")
    _dead_letter(environments, "msg_prod", "int_prod")
    listed = client.get("/v1/dlq?integrationId=int_dev", headers=DEV_ONLY)
    assert [e["messageId"] for e in listed.json()["data"]] == ["msg_dev"]
    for method, path, body in [
        ("GET", "/v1/dlq", None),  # every environment at once
        ("GET", "/v1/dlq?integrationId=int_prod", None),
        ("GET", "/v1/dlq/msg_prod", None),
        ("POST", "/v1/dlq/replay", {"messageIds": ["msg_prod"]}),
        ("POST", "/v1/dlq/replay", {"messageIds": ["msg_dev", "msg_prod"]}),
        ("POST", "/v1/dlq/replay", {"filter": {"code": "HTTP_400"}}),
        ("POST", "/v1/dlq/replay", {"filter": {"integrationId": "int_prod"}}),
        ("POST", "/v1/dlq/discard", {"messageIds": ["msg_prod"], "reason": "r"}),
    ]:
        error = assert_error(client.request(method, path, headers=DEV_ONLY, json=body),
                             403, "FORBIDDEN")
        assert error["details"][0]["environment"] in ("PROD", "*"), (method, path, body)
    for body in ({"messageIds": ["msg_dev"]}, {"filter": {"integrationId": "int_dev"}}):
        assert client.post("/v1/dlq/replay", headers=DEV_ONLY,
                           json=body).status_code == LOG_DOWN  # allowed: reached the log
    every = client.get("/v1/dlq", headers=headers("viewer")).json()["data"]
    assert {e["messageId"] for e in every} == {"msg_dev", "msg_prod"}
