"""``/v1/environments/{env}/variables``: set, list and delete on the real broker and worker;
refusals, limits and isolation on the brokerless app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from integrationos.api.app import create_app
from integrationos.api.routes.environments import MAX_VARIABLES
from integrationos.settings import Settings
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, GLOBEX, assert_error
from tests.api.test_reads import conforms


@pytest.fixture
def live(worker, tenant) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(create_app(Settings.from_env())) as client:
        yield client, {"X-Tenant-Id": tenant[0], "X-API-Key": tenant[1]}


@pytest.mark.broker
def test_set_list_and_delete_per_environment(live: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = live
    put = client.put("/v1/environments/prod/variables/REGION", headers=headers,
                     json={"value": "eu-west-1"})
    assert put.status_code == 200, put.text
    conforms(put.json(), "EnvironmentVariable")
    assert put.json()["environment"] == "PROD" and put.json()["value"] == "eu-west-1"
    client.put("/v1/environments/DEV/variables/REGION", headers=headers, json={"value": "local"})
    again = client.put("/v1/environments/PROD/variables/REGION", headers=headers,
                       json={"value": "eu-central-1"})
    assert again.json()["value"] == "eu-central-1"

    listed = client.get("/v1/environments/PROD/variables", headers=headers).json()
    conforms(listed, "EnvironmentVariableList")
    assert [(v["name"], v["value"]) for v in listed["data"]] == [("REGION", "eu-central-1")]
    deleted = client.delete("/v1/environments/PROD/variables/REGION", headers=headers)
    assert deleted.status_code == 204
    assert client.get("/v1/environments/PROD/variables", headers=headers).json()["data"] == []
    dev = client.get("/v1/environments/DEV/variables", headers=headers).json()["data"]
    assert [(v["name"], v["value"]) for v in dev] == [("REGION", "local")]


@pytest.fixture
def variables(seed: Any) -> Any:
    seed.apply(*[Event(t.ENVIRONMENT_VARIABLE_SET, "acme", "env:QA", {
        "environment": "QA", "name": f"V{n:03d}", "value": str(n)})
        for n in range(MAX_VARIABLES)])
    return seed


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/v1/environments/STAGING/variables/A", {"value": "x"}, 404, "NOT_FOUND"),
    ("/v1/environments/DEV/variables/1ABC", {"value": "x"}, 422, "VALIDATION_FAILED"),
    ("/v1/environments/DEV/variables/" + "A" * 101, {"value": "x"}, 422, "VALIDATION_FAILED"),
    ("/v1/environments/DEV/variables/A-B", {"value": "x"}, 422, "VALIDATION_FAILED"),
    ("/v1/environments/DEV/variables/A", {"value": 5}, 422, "VALIDATION_FAILED"),
    ("/v1/environments/DEV/variables/A", {"value": "x" * 4097}, 422, "VALIDATION_FAILED"),
    ("/v1/environments/DEV/variables/A", {}, 422, "VALIDATION_FAILED"),
    ("/v1/environments/QA/variables/ONE_TOO_MANY", {"value": "x"}, 409, "LIMIT_REACHED"),
])
def test_refusals(client: TestClient, variables: Any, path: str, body: Any, status: int,
                  code: str) -> None:
    assert_error(client.put(path, headers=ACME, json=body), status, code)


def test_listing_deleting_and_isolation(client: TestClient, variables: Any) -> None:
    listed = client.get("/v1/environments/qa/variables", headers=ACME).json()
    assert listed["environment"] == "QA" and len(listed["data"]) == MAX_VARIABLES
    assert listed["data"][0] == {"environment": "QA", "name": "V000", "value": "0",
                                 "updatedAt": listed["data"][0]["updatedAt"]}
    assert client.get("/v1/environments/QA/variables", headers=GLOBEX).json()["data"] == []
    assert_error(client.delete("/v1/environments/QA/variables/V000", headers=GLOBEX), 404,
                 "NOT_FOUND")
    assert_error(client.delete("/v1/environments/QA/variables/NOPE", headers=ACME), 404,
                 "NOT_FOUND")
    assert_error(client.get("/v1/environments/XX/variables", headers=ACME), 404, "NOT_FOUND")
