"""Versions, promotion DEV → QA → PROD, the test-case gate, rollback and history, through
the real app and the real projection code: each write's event is encoded and applied by
the projector in place of the broker and the worker (the broker run is tests/e2e/
test_promotion.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from integrationos.api.app import create_app
from integrationos.api.gate import mismatches
from integrationos.api.routes.promotion import restore_point
from integrationos.settings import Settings
from integrationos.store.projector import LogRecord, Projector, applied_through
from integrationos.topics import codec
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, GLOBEX, Seeder, assert_error
from tests.api.test_reads import conforms

EXPRESSION = '{"Email": $lowercase(email), "Name": name}'


class ProjectingLog:
    """Stands in for the broker and the worker: appends are applied by the projector at
    once, at the next offset, so the write path's wait for the projection is real."""

    def __init__(self, seeder: Seeder) -> None:
        self.engine = seeder.engine
        self.events: list[Event] = []

    def append(self, topic: str, event: Event, partition: int | None = None
               ) -> asyncio.Future[tuple[int, int]]:
        offset = applied_through(self.engine, topic, 0)
        Projector(self.engine).apply([LogRecord(topic, 0, offset, codec.encode(event))])
        self.events.append(event)
        done: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        done.set_result((0, offset))
        return done


@pytest.fixture
def log(seed: Seeder) -> ProjectingLog:
    for environment in ("DEV", "QA", "PROD"):
        seed.connector("acme", f"con_src_{environment.lower()}", f"source {environment}",
                       "HTTP", {"url": "http://127.0.0.1:9/in"})
        seed.connector("acme", f"con_dst_{environment.lower()}", f"target {environment}",
                       "HTTP", {"url": f"http://127.0.0.1:9/{environment.lower()}"})
    seed.connector("acme", "con_kafka", "kafka out", "KAFKA", {"topic": "out"})
    return ProjectingLog(seed)


@pytest.fixture
def api(settings: Settings, log: ProjectingLog) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        client.app_state["platform"].producer = log
        yield client


def call(api: TestClient, method: str, path: str, status: int, **kwargs: Any) -> Any:
    response = api.request(method, path, headers=ACME, **kwargs)
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def dev_integration(api: TestClient, **fields: Any) -> dict[str, Any]:
    return call(api, "POST", "/v1/integrations", 201, json={
        "name": "contacts", "sourceConnectorId": "con_src_dev",
        "targetConnectorId": "con_dst_dev", "expression": EXPRESSION, **fields})


QA_BINDINGS = {"con_src_dev": "con_src_qa", "con_dst_dev": "target QA"}
PROD_BINDINGS = {"con_src_qa": "con_src_prod", "con_dst_qa": "con_dst_prod"}


def promote(api: TestClient, integration_id: str, status: int, **body: Any) -> Any:
    return api.post(f"/v1/integrations/{integration_id}/promote", headers=ACME, json=body)


def test_every_change_is_a_version_and_promotion_copies_one_through_each_stage(api):
    dev = dev_integration(api)
    call(api, "PATCH", f"/v1/integrations/{dev['id']}", 200, json={"errorStrategy": "DLQ"})
    versions = call(api, "GET", f"/v1/integrations/{dev['id']}/versions", 200)
    conforms(versions, "IntegrationVersionList")
    assert [(v["version"], v["origin"], v["errorStrategy"]) for v in versions["data"]] == [
        (1, "CREATED", "RETRY_3_DLQ"), (2, "UPDATED", "DLQ")]

    missing = assert_error(promote(api, dev["id"], 422, **{"from": "DEV", "to": "QA"}),
                           422, "VALIDATION_FAILED")
    assert {d["field"] for d in missing["details"]} == {
        "/connectorBindings/con_src_dev", "/connectorBindings/con_dst_dev"}

    first = promote(api, dev["id"], 201, **{"from": "DEV", "to": "QA", "version": 1,
                                            "connectorBindings": QA_BINDINGS})
    assert first.status_code == 201, first.text
    promotion = first.json()
    conforms(promotion, "Promotion")
    assert promotion["source"] == {"integrationId": dev["id"], "version": 1}
    assert promotion["target"]["version"] == 1 and promotion["created"] is True
    assert promotion["promotedBy"] == "key_acme"  # the credential id, never the key
    assert promotion["gate"] is None
    qa = call(api, "GET", f"/v1/integrations/{promotion['target']['integrationId']}", 200)
    assert (qa["environment"], qa["name"], qa["status"]) == ("QA", "contacts", "ACTIVE")
    assert (qa["sourceConnectorId"], qa["targetConnectorId"]) == ("con_src_qa", "con_dst_qa")
    assert qa["errorStrategy"] == "RETRY_3_DLQ"  # version 1, not the current DEV version

    # The bindings are remembered: promoting the current DEV version needs none.
    again = promote(api, dev["id"], 200, **{"from": "DEV", "to": "QA"})
    assert again.status_code == 200, again.text
    assert again.json()["target"] == {"integrationId": qa["id"], "version": 2}
    qa_version = call(api, "GET", f"/v1/integrations/{qa['id']}/versions/2", 200)
    conforms(qa_version, "IntegrationVersion")
    assert qa_version["promotedFrom"] == {"integrationId": dev["id"], "version": 2}
    assert qa_version["errorStrategy"] == "DLQ" and qa_version["origin"] == "PROMOTED"

    skip = assert_error(promote(api, dev["id"], 422, **{"from": "DEV", "to": "PROD"}),
                        422, "VALIDATION_FAILED")
    assert skip["details"][0]["field"] == "/to"

    # The DEV id names the lineage: its QA stage is what goes to PROD.
    prod = promote(api, dev["id"], 201, **{"from": "QA", "to": "PROD",
                                           "connectorBindings": PROD_BINDINGS})
    assert prod.status_code == 201, prod.text
    assert prod.json()["source"] == {"integrationId": qa["id"], "version": 2}
    bindings = call(api, "GET", f"/v1/integrations/{qa['id']}/connector-bindings", 200)
    conforms(bindings, "ConnectorBindingList")
    assert bindings["lineageId"] == dev["id"]
    assert {(b["environment"], b["fromConnectorId"], b["toConnectorId"])
            for b in bindings["data"]} == {
        ("QA", "con_src_dev", "con_src_qa"), ("QA", "con_dst_dev", "con_dst_qa"),
        ("PROD", "con_src_qa", "con_src_prod"), ("PROD", "con_dst_qa", "con_dst_prod")}


@pytest.mark.parametrize(("bindings", "message"), [
    ({"con_src_dev": "con_src_dev", "con_dst_dev": "con_dst_qa"}, "another connector"),
    ({"con_src_dev": "con_src_qa", "con_dst_dev": "con_kafka"}, "is KAFKA"),
    ({"con_src_dev": "con_src_qa", "con_dst_dev": "nope"}, "no connector"),
    ({"con_src_dev": "con_src_qa", "con_dst_dev": "con_dst_qa", "con_kafka": "con_dst_qa"},
     "is not a connector of the version"),
])
def test_a_binding_that_cannot_serve_is_refused_with_its_reason(api, bindings, message):
    dev = dev_integration(api)
    error = assert_error(promote(api, dev["id"], 422, **{
        "from": "DEV", "to": "QA", "connectorBindings": bindings}), 422, "VALIDATION_FAILED")
    assert any(message in d["message"] for d in error["details"]), error
    assert call(api, "GET", "/v1/integrations?environment=QA", 200)["data"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"from": "DEV"}, "/to"),
    ({"from": "PROD", "to": "QA"}, "/from"),
    ({"from": "DEV", "to": "QA", "version": 0}, "/version"),
    ({"from": "DEV", "to": "QA", "extra": 1}, "/extra"),
    ({"from": "QA", "to": "PROD"}, "/from"),
    ({"from": "DEV", "to": "QA", "version": 9}, "/version"),
])
def test_bad_promotion_requests_are_422_naming_the_field(api, body, field):
    dev = dev_integration(api)
    error = assert_error(promote(api, dev["id"], 422, **body), 422, "VALIDATION_FAILED")
    assert field in {d["field"] for d in error["details"]}


def test_unknown_and_foreign_integrations_are_404(api):
    dev = dev_integration(api)
    assert_error(api.post("/v1/integrations/int_nope/promote", headers=ACME,
                          json={"from": "DEV", "to": "QA"}), 404, "NOT_FOUND")
    assert_error(api.post(f"/v1/integrations/{dev['id']}/promote", headers=GLOBEX,
                          json={"from": "DEV", "to": "QA"}), 404, "NOT_FOUND")
    for path in ("versions", "history", "test-cases", "connector-bindings"):
        assert_error(api.get(f"/v1/integrations/{dev['id']}/{path}", headers=GLOBEX),
                     404, "NOT_FOUND")
    assert_error(api.get(f"/v1/integrations/{dev['id']}/versions/abc", headers=ACME),
                 404, "NOT_FOUND")


def test_a_qa_version_edited_in_qa_cannot_go_to_prod(api):
    dev = dev_integration(api)
    qa_id = promote(api, dev["id"], 201, **{"from": "DEV", "to": "QA",
                                            "connectorBindings": QA_BINDINGS}
                    ).json()["target"]["integrationId"]
    call(api, "PATCH", f"/v1/integrations/{qa_id}", 200, json={"errorStrategy": "DLQ"})
    error = assert_error(promote(api, qa_id, 422, **{"from": "QA", "to": "PROD",
                                                     "connectorBindings": PROD_BINDINGS}),
                         422, "VALIDATION_FAILED")
    assert "not promoted from DEV" in error["details"][0]["message"]
    # The QA version that did come from DEV still may.
    ok = promote(api, qa_id, 201, **{"from": "QA", "to": "PROD", "version": 1,
                                      "connectorBindings": PROD_BINDINGS})
    assert ok.status_code == 201, ok.text


def _to_qa(api: TestClient) -> tuple[str, str]:
    dev = dev_integration(api)
    qa = promote(api, dev["id"], 201, **{"from": "DEV", "to": "QA",
                                         "connectorBindings": QA_BINDINGS}).json()
    return dev["id"], qa["target"]["integrationId"]


def test_the_gate_runs_the_saved_cases_and_refuses_prod_when_one_fails(api, log):
    dev_id, qa_id = _to_qa(api)
    passing = call(api, "POST", f"/v1/integrations/{dev_id}/test-cases", 201, json={
        "name": "lower-cases the email", "payload": {"email": "A@EX.PT", "name": "Ana"},
        "expected": {"Email": "a@ex.pt"}})
    conforms(passing, "TestCase")
    assert passing["match"] == "SUBSET" and passing["createdBy"] == "key_acme"
    failing = call(api, "POST", f"/v1/integrations/{qa_id}/test-cases", 201, json={
        "name": "exact", "payload": {"email": "b@ex.pt", "name": "Bo"},
        "expected": {"Email": "b@ex.pt"}, "match": "EXACT"})
    listed = call(api, "GET", f"/v1/integrations/{qa_id}/test-cases", 200)
    conforms(listed, "TestCaseList")
    assert [c["id"] for c in listed["data"]] == [passing["id"], failing["id"]]
    assert_error(api.post(f"/v1/integrations/{dev_id}/test-cases", headers=ACME, json={
        "name": "exact", "payload": {}, "expected": {}}), 409, "CONFLICT")

    events_before = len(log.events)
    refused = assert_error(promote(api, qa_id, 409, **{
        "from": "QA", "to": "PROD", "connectorBindings": PROD_BINDINGS}),
        409, "PROMOTION_GATE_FAILED")
    results = {r["name"]: r for r in refused["details"]}
    assert results["lower-cases the email"]["status"] == "PASSED"
    assert results["exact"]["status"] == "FAILED"
    assert results["exact"]["mismatches"] == [{"pointer": "/",
                                               "message": "differs from the expected value"}]
    assert results["exact"]["output"] == {"Email": "b@ex.pt", "Name": "Bo"}
    assert len(log.events) == events_before  # nothing appended
    assert call(api, "GET", "/v1/integrations?environment=PROD", 200)["data"] == []

    call(api, "DELETE", f"/v1/integrations/{dev_id}/test-cases/{failing['id']}", 204)
    assert_error(api.delete(f"/v1/integrations/{dev_id}/test-cases/{failing['id']}",
                            headers=ACME), 404, "NOT_FOUND")
    passed = promote(api, qa_id, 201, **{"from": "QA", "to": "PROD",
                                         "connectorBindings": PROD_BINDINGS})
    assert passed.status_code == 201, passed.text
    gate = passed.json()["gate"]
    assert gate["status"] == "PASSED"
    assert [(c["testCaseId"], c["status"]) for c in gate["cases"]] == [(passing["id"],
                                                                        "PASSED")]
    assert log.events[-1].data["gate"] == gate  # the result is in the event
    history = call(api, "GET", f"/v1/integrations/{passed.json()['target']['integrationId']}"
                   "/history", 200)["data"]
    assert history[-1]["details"]["gate"] == gate


def test_a_case_whose_flow_fails_fails_the_gate(api):
    dev_id, qa_id = _to_qa(api)
    call(api, "POST", f"/v1/integrations/{dev_id}/test-cases", 201, json={
        "name": "a number for an email", "payload": {"email": 5}, "expected": {}})
    refused = assert_error(promote(api, qa_id, 409, **{
        "from": "QA", "to": "PROD", "connectorBindings": PROD_BINDINGS}),
        409, "PROMOTION_GATE_FAILED")
    result = refused["details"][0]
    assert result["status"] == "FAILED" and result["output"] is None
    assert result["errors"] and result["mismatches"] == []


def _prod(api: TestClient) -> tuple[str, str, str]:
    dev_id, qa_id = _to_qa(api)
    prod_id = promote(api, qa_id, 201, **{"from": "QA", "to": "PROD",
                                          "connectorBindings": PROD_BINDINGS}
                      ).json()["target"]["integrationId"]
    return dev_id, qa_id, prod_id


def test_rollback_restores_the_previous_prod_version_as_a_new_one(api):
    dev_id, qa_id, prod_id = _prod(api)
    call(api, "PATCH", f"/v1/integrations/{dev_id}", 200, json={"expression": '{"v": 2}'})
    promote(api, dev_id, 200, **{"from": "DEV", "to": "QA"})
    second = promote(api, dev_id, 200, **{"from": "QA", "to": "PROD"})
    assert second.json()["target"] == {"integrationId": prod_id, "version": 2}
    assert call(api, "GET", f"/v1/integrations/{prod_id}", 200)["expression"] == '{"v": 2}'

    rolled = call(api, "POST", f"/v1/integrations/{prod_id}/rollback", 200,
                  json={"reason": "v2 drops the email"})
    conforms(rolled, "Integration")
    assert rolled["version"] == 3 and rolled["expression"] == EXPRESSION
    assert rolled["targetConnectorId"] == "con_dst_prod"
    version = call(api, "GET", f"/v1/integrations/{prod_id}/versions/3", 200)
    assert (version["origin"], version["restoredVersion"]) == ("ROLLED_BACK", 1)
    # Versions stay immutable: 2 is still there.
    assert call(api, "GET", f"/v1/integrations/{prod_id}/versions/2", 200)[
        "expression"] == '{"v": 2}'
    # Nothing before version 1 to go back to; a body is optional.
    assert_error(api.post(f"/v1/integrations/{prod_id}/rollback", headers=ACME), 409,
                 "ROLLBACK_NOT_AVAILABLE")
    assert_error(api.post(f"/v1/integrations/{qa_id}/rollback", headers=ACME, json={}),
                 409, "ROLLBACK_NOT_AVAILABLE")
    assert_error(api.post(f"/v1/integrations/{prod_id}/rollback", headers=ACME,
                          json={"reason": ""}), 422, "VALIDATION_FAILED")


def test_history_is_the_audit_log_oldest_first_and_paged(api):
    dev_id, qa_id, prod_id = _prod(api)
    call(api, "POST", f"/v1/integrations/{qa_id}/pause", 200)
    call(api, "POST", f"/v1/integrations/{qa_id}/resume", 200)
    history = call(api, "GET", f"/v1/integrations/{qa_id}/history", 200)
    conforms(history, "IntegrationHistory")
    entries = history["data"]
    assert [(e["type"], e["version"]) for e in entries] == [
        ("integration.promoted", 1), ("integration.promoted", 1),
        ("integration.paused", None), ("integration.resumed", None)]
    into_qa, out_of_qa = entries[0]["details"], entries[1]["details"]
    assert (into_qa["fromEnvironment"], into_qa["toEnvironment"]) == ("DEV", "QA")
    assert into_qa["source"] == {"integrationId": dev_id, "version": 1}
    assert (out_of_qa["toEnvironment"], out_of_qa["target"]["integrationId"]) == (
        "PROD", prod_id)
    assert entries[0]["by"] == "key_acme" and entries[2]["details"]["reason"] == "USER"
    # every change says who made it: the credential, never a secret
    assert [e["by"] for e in entries] == ["key_acme"] * 4
    dev_history = call(api, "GET", f"/v1/integrations/{dev_id}/history", 200)["data"]
    assert (dev_history[0]["type"], dev_history[0]["by"]) == ("integration.created", "key_acme")
    times = [e["occurredAt"] for e in entries]
    assert times == sorted(times)

    first_page = call(api, "GET", f"/v1/integrations/{qa_id}/history?limit=3", 200)
    assert len(first_page["data"]) == 3 and first_page["nextCursor"]
    rest = call(api, "GET", f"/v1/integrations/{qa_id}/history?limit=3&cursor="
                f"{first_page['nextCursor']}", 200)
    assert first_page["data"] + rest["data"] == entries and rest["nextCursor"] is None
    assert_error(api.get(f"/v1/integrations/{qa_id}/history?cursor=%%%", headers=ACME),
                 400, "INVALID_QUERY")

    call(api, "DELETE", f"/v1/integrations/{dev_id}", 204)
    dev_history = call(api, "GET", f"/v1/integrations/{dev_id}/history", 200)["data"]
    assert [e["type"] for e in dev_history] == [
        "integration.created", "integration.promoted", "integration.deleted"]


def test_subset_and_exact_matching():
    output = {"a": 1, "b": {"c": [1, {"d": True}], "e": "x"}, "f": None}
    assert mismatches({"b": {"c": [1, {"d": True}]}}, output, "SUBSET") == []
    assert mismatches({"a": 1.0}, output, "SUBSET") == []
    assert mismatches({"b": {"c": [1]}}, output, "SUBSET") == [
        {"pointer": "/b/c", "message": "expected an array of 1 items"}]
    assert mismatches({"b": {"c": [1, {"d": 1}]}}, output, "SUBSET") == [
        {"pointer": "/b/c/1/d", "message": "differs from the expected value"}]
    assert mismatches({"x/y": 1}, output, "SUBSET") == [
        {"pointer": "/x~1y", "message": "is missing from the output"}]
    assert mismatches({"a": 1}, output, "EXACT") != []
    assert mismatches(output, dict(output), "EXACT") == []


def test_repeated_rollbacks_walk_back_one_promotion_at_a_time():
    class Version:
        def __init__(self, restored: int | None = None) -> None:
            self.restored_version = restored

    versions = {1: Version(), 2: Version(), 3: Version()}
    assert restore_point(versions, 3) == 2
    versions[4] = Version(2)
    assert restore_point(versions, 4) == 1
    versions[5] = Version(1)
    assert restore_point(versions, 5) is None
    versions[6] = Version()
    assert restore_point(versions, 6) == 1  # 5 restored 1: name the original
