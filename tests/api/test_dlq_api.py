"""The dead-letter queue API on rows put in by the real projector: filters, pagination,
the detail of an entry, discards (validation, and their projection), tenant isolation."""

from __future__ import annotations

import json

import pytest

from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, GLOBEX, assert_error
from tests.api.test_reads import conforms

INT_A = "int_aaaaaaaaaaaaaaaaaaaaaaaa"
INT_B = "int_bbbbbbbbbbbbbbbbbbbbbbbb"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _dead_lettered(tenant: str, message_id: str, integration_id: str, at: int, code: str,
                   text: str, failures: int = 1) -> list[Event]:
    """A message's events from receipt to the DLQ, ``failures`` delivery attempts."""
    common = {"messageId": message_id, "integrationId": integration_id}
    events = [
        Event(t.MESSAGE_RECEIVED, tenant, message_id, common | {
            "key": None, "payloadJson": '{"email": "a@ex.pt"}', "source": "api",
            "contentType": "application/json"}, occurred_at_ms=at, traceparent=TRACE),
        Event(t.MESSAGE_TRANSFORMED, tenant, message_id, common | {
            "outputJson": '{"Email": "a@ex.pt"}', "durationUs": 10},
            occurred_at_ms=at, traceparent=TRACE),
    ]
    events += [
        Event(t.MESSAGE_FAILED, tenant, message_id, common | {
            "attempt": n, "stage": "deliver", "errorClass": "PERMANENT", "code": code,
            "message": f"{text} (attempt {n})"}, occurred_at_ms=at + n, traceparent=TRACE)
        for n in range(1, failures + 1)
    ]
    events.append(Event(t.MESSAGE_DEAD_LETTERED, tenant, message_id, common | {
        "stage": "deliver", "code": code, "message": text, "dlqTopic": "tapi.dlq.v1"},
        occurred_at_ms=at + failures + 1, traceparent=TRACE))
    return events


@pytest.fixture
def dlq(seed):
    seed.integration("acme", INT_A, "a")
    seed.integration("acme", INT_B, "b")
    seed.integration("globex", "int_globex", "g")
    seed.message_events(
        *_dead_lettered("acme", "msg_1", INT_A, T0, "HTTP_400", "Bad Request: Email", 3),
        *_dead_lettered("acme", "msg_2", INT_A, T0 + MINUTE, "HTTP_422", "unprocessable"),
        *_dead_lettered("acme", "msg_3", INT_B, T0 + 2 * MINUTE, "HTTP_400", "missing name"),
        *_dead_lettered("globex", "msg_g", "int_globex", T0, "HTTP_400", "Bad Request"),
    )
    return seed


def _ids(client, query: str = "", headers=ACME) -> list[str]:
    response = client.get(f"/v1/dlq{query}", headers=headers)
    assert response.status_code == 200, response.text
    conforms(response.json(), "DlqEntryList")
    return [entry["messageId"] for entry in response.json()["data"]]


def test_an_entry_in_the_listing(client, dlq):
    first = client.get("/v1/dlq", headers=ACME).json()["data"][0]
    assert first == {"messageId": "msg_1", "integrationId": INT_A, "code": "HTTP_400",
                     "message": "Bad Request: Email", "stage": "deliver",
                     "deadLetteredAt": "2026-01-01T00:00:00.004Z", "attempts": 3}


@pytest.mark.parametrize(("query", "expected"), [
    ("", ["msg_1", "msg_2", "msg_3"]),
    (f"?integrationId={INT_B}", ["msg_3"]),
    ("?code=HTTP_400", ["msg_1", "msg_3"]),
    ("?from=2026-01-01T00:01:00Z", ["msg_2", "msg_3"]),
    ("?to=2026-01-01T00:01:30%2B00:00", ["msg_1", "msg_2"]),
    ("?from=2026-01-01T00:00:30&to=2026-01-01T00:01:30", ["msg_2"]),
    ("?q=bad%20REQUEST", ["msg_1"]),
    ("?q=%25", []),  # a LIKE wildcard is searched for literally
    (f"?code=HTTP_400&integrationId={INT_A}", ["msg_1"]),
])
def test_filters(client, dlq, query, expected):
    assert _ids(client, query) == expected


def test_a_bad_time_is_an_invalid_query(client, dlq):
    error = assert_error(client.get("/v1/dlq?from=yesterday", headers=ACME), 400,
                         "INVALID_QUERY")
    assert error["details"][0]["field"] == "from"


def test_pages_follow_the_cursor_without_overlap(client, dlq):
    first = client.get("/v1/dlq?limit=2", headers=ACME).json()
    assert [e["messageId"] for e in first["data"]] == ["msg_1", "msg_2"]
    rest = client.get(f"/v1/dlq?limit=2&cursor={first['nextCursor']}", headers=ACME).json()
    assert [e["messageId"] for e in rest["data"]] == ["msg_3"]
    assert rest["nextCursor"] is None


def test_the_detail_has_payload_output_every_attempt_and_the_reason(client, dlq):
    response = client.get("/v1/dlq/msg_1", headers=ACME)
    assert response.status_code == 200, response.text
    body = response.json()
    conforms(body, "DlqMessage")
    assert body["status"] == "DEAD_LETTERED" and body["discarded"] is None
    assert body["contentType"] == "application/json"
    assert body["payload"] == {"email": "a@ex.pt"} and body["output"] == {"Email": "a@ex.pt"}
    assert [(a["attempt"], a["message"]) for a in body["attempts"]] == [
        (1, "Bad Request: Email (attempt 1)"), (2, "Bad Request: Email (attempt 2)"),
        (3, "Bad Request: Email (attempt 3)")]
    assert body["deadLetter"] == {"stage": "deliver", "code": "HTTP_400",
                                  "message": "Bad Request: Email", "dlqTopic": "tapi.dlq.v1",
                                  "deadLetteredAt": "2026-01-01T00:00:00.004Z"}
    assert body["traceparent"] == TRACE


def test_tenants_never_see_each_other(client, dlq):
    assert _ids(client, headers=GLOBEX) == ["msg_g"]
    assert_error(client.get("/v1/dlq/msg_g", headers=ACME), 404, "NOT_FOUND")
    error = assert_error(client.post("/v1/dlq/discard", headers=ACME, json={
        "messageIds": ["msg_1", "msg_g"], "reason": "x"}), 422, "VALIDATION_FAILED")
    assert error["details"] == [{"field": "messageIds/1",
                                 "message": "no dead-lettered message 'msg_g'"}]


@pytest.mark.parametrize("body", [
    {"messageIds": [], "reason": "obsolete"},
    {"messageIds": ["msg_1", "msg_1"], "reason": "obsolete"},
    {"messageIds": ["msg_1"]},
    {"messageIds": ["msg_1"], "reason": ""},
    {"messageIds": "msg_1", "reason": "obsolete"},
])
def test_a_discard_request_is_validated(client, dlq, body):
    assert_error(client.post("/v1/dlq/discard", headers=ACME, json=body), 422,
                 "VALIDATION_FAILED")


def test_a_discard_leaves_the_listing_and_the_depth_but_keeps_the_history(client, dlq):
    discarded = Event(t.MESSAGE_DISCARDED, "acme", "msg_1", {
        "messageId": "msg_1", "integrationId": INT_A, "reason": "customer deleted"},
        occurred_at_ms=T0 + 5 * MINUTE)
    dlq.message_events(discarded, discarded)  # re-delivered: applied once

    assert _ids(client) == ["msg_2", "msg_3"]
    detail = client.get("/v1/dlq/msg_1", headers=ACME).json()
    assert detail["status"] == "DISCARDED"
    assert detail["discarded"] == {"reason": "customer deleted",
                                   "discardedAt": "2026-01-01T00:05:00.000Z"}
    status = client.get(f"/v1/integrations/{INT_A}/status", headers=ACME).json()
    assert (status["deadLettered"], status["discarded"], status["total"]) == (1, 1, 2)
    history = client.get("/v1/messages/msg_1", headers=ACME).json()
    assert history["status"] == "DISCARDED"
    assert [e["type"] for e in history["events"]].count(t.MESSAGE_DISCARDED) == 1
    # discarding it again is accepted and appends nothing (no broker here to append to)
    assert client.post("/v1/dlq/discard", headers=ACME, json={
        "messageIds": ["msg_1"], "reason": "again"}).json() == {"discarded": ["msg_1"]}


@pytest.mark.parametrize("body", [
    {},
    {"messageIds": []},
    {"messageIds": ["msg_1"], "filter": {"code": "HTTP_400"}},
    {"messageIds": ["msg_nope"]},
    {"messageIds": ["msg_g"]},  # another tenant's
    {"messageIds": ["msg_1", "msg_2"], "payload": {"email": "x@ex.pt"}},
    {"filter": {"code": "HTTP_400"}, "payload": {"email": "x@ex.pt"}},
    {"filter": {"from": "yesterday"}},
    {"filter": {"colour": "red"}},
])
def test_a_replay_request_is_validated(client, dlq, body):
    error = assert_error(client.post("/v1/dlq/replay", headers=ACME, json=body), 422,
                         "VALIDATION_FAILED")
    assert error["details"]


def test_a_filter_that_matches_nothing_is_refused(client, dlq):
    assert_error(client.post("/v1/dlq/replay", headers=ACME,
                             json={"filter": {"code": "HTTP_503"}}), 422, "NOTHING_TO_REPLAY")


def test_a_valid_replay_request_without_a_broker_is_503_not_500(client, dlq):
    assert_error(client.post("/v1/dlq/replay", headers=ACME, json={"messageIds": ["msg_1"]}),
                 503, "LOG_UNAVAILABLE")


def test_a_replay_is_followed_through_its_events(client, dlq):
    """Requested, progressed, then what became of each message it sent."""
    replay_id = "rpl_0123456789abcdef01234567"
    requested = Event(t.MESSAGE_REPLAY_REQUESTED, "acme", replay_id, {
        "replayId": replay_id, "kind": "DLQ", "integrationId": INT_A, "messageIds": [],
        "filterJson": json.dumps({"integrationId": INT_A}), "payloadJson": None,
        "contentType": None, "fromJson": None, "requestedAt": T0 + 9 * MINUTE,
        "requestedBy": None}, occurred_at_ms=T0 + 9 * MINUTE)
    dlq.apply(requested, topic="tapi.replays.v1")
    pending = client.get(f"/v1/dlq/replays/{replay_id}", headers=ACME)
    assert pending.status_code == 200
    conforms(pending.json(), "Replay")
    assert (pending.json()["status"], pending.json()["total"]) == ("PENDING", None)

    replayed = [Event(t.MESSAGE_REPLAYED, "acme", m, {
        "messageId": m, "integrationId": INT_A, "replayId": replay_id, "payloadJson": None},
        occurred_at_ms=T0 + 10 * MINUTE) for m in ("msg_1", "msg_2")]
    delivered = Event(t.MESSAGE_DELIVERED, "acme", "msg_1", {
        "messageId": "msg_1", "integrationId": INT_A, "attempt": 1, "target": "http",
        "detail": "200"}, occurred_at_ms=T0 + 11 * MINUTE)
    dlq.message_events(*replayed, *replayed, delivered)  # re-delivered: applied once
    dlq.apply(Event(t.REPLAY_COMPLETED, "acme", replay_id, {
        "replayId": replay_id, "status": "COMPLETED", "total": 2, "sent": 2, "skipped": 0,
        "error": None}, occurred_at_ms=T0 + 12 * MINUTE), topic="tapi.replays.v1")

    replay = client.get(f"/v1/dlq/replays/{replay_id}", headers=ACME).json()
    conforms(replay, "Replay")
    assert (replay["status"], replay["total"], replay["sent"]) == ("COMPLETED", 2, 2)
    assert replay["outcome"] == {"delivered": 1, "deadLettered": 0, "parked": 0, "failed": 0,
                                 "discarded": 0, "inFlight": 1}
    assert replay["completedAt"] == "2026-01-01T00:12:00.000Z"
    assert _ids(client) == ["msg_3"]  # both left the DLQ listing when replayed
    assert client.get("/v1/dlq/msg_2", headers=ACME).json()["status"] == "REPLAYED"
    status = client.get(f"/v1/integrations/{INT_A}/status", headers=ACME).json()
    assert (status["delivered"], status["deadLettered"], status["total"]) == (1, 0, 2)
    assert client.get(f"/v1/dlq/replays/{replay_id}", headers=GLOBEX).status_code == 404
