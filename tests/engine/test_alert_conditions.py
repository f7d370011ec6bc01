"""Alert condition readings over projections built by the real projector (no Kafka): the
edges the end-to-end test does not walk through one by one."""

from __future__ import annotations

import dataclasses
import time

import pytest

from integrationos.engine.alert_conditions import read_stored
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import Seeder

NOW = int(time.time() * 1000)


@pytest.fixture
def seed(tmp_path):
    settings = dataclasses.replace(
        Settings.from_env(), data_dir=tmp_path, topic_prefix="tcond", master_key="",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = open_database(settings.database_url)
    seeder = Seeder(engine, settings)
    seeder.apply(Event(t.TENANT_CREATED, "acme", "acme", {"id": "acme", "name": "a",
                                                          "plan": "pro"}))
    yield seeder
    engine.dispose()


def _message(seed: Seeder, message_id: str, outcome: str, at: int,
             integration: str = "int_a") -> None:
    common = {"messageId": message_id, "integrationId": integration}
    events = [Event(t.MESSAGE_RECEIVED, "acme", message_id, common | {
        "key": None, "payloadJson": "{}", "source": "api", "contentType": "application/json"},
        occurred_at_ms=at)]
    if outcome == "DELIVERED":
        events.append(Event(t.MESSAGE_DELIVERED, "acme", message_id, common | {
            "attempt": 1, "target": "x", "detail": "ok"}, occurred_at_ms=at + 1))
    elif outcome == "DEAD_LETTERED":
        events.append(Event(t.MESSAGE_DEAD_LETTERED, "acme", message_id, common | {
            "stage": "deliver", "code": "HTTP_400", "message": "no", "dlqTopic": "d"},
            occurred_at_ms=at + 1))
    seed.message_events(*events)


def _read(seed: Seeder, condition: dict, since: int = 0):
    return read_stored(seed.engine, "acme", condition, since, NOW)


def test_dlq_depth_counts_what_waits_and_only_above_the_threshold(seed):
    for n in range(3):
        _message(seed, f"m{n}", "DEAD_LETTERED", NOW - 1000)
    _message(seed, "other", "DEAD_LETTERED", NOW - 1000, integration="int_b")
    seed.message_events(Event(t.MESSAGE_DISCARDED, "acme", "m0", {
        "messageId": "m0", "integrationId": "int_a", "reason": "seen"}))
    condition = {"type": "DLQ_DEPTH", "integrationId": "int_a", "threshold": 2}
    assert (_read(seed, condition).firing, _read(seed, condition).value) == (False, 2.0)
    assert _read(seed, condition | {"threshold": 1}).firing
    tenant_wide = _read(seed, {"type": "DLQ_DEPTH", "threshold": 2})
    assert (tenant_wide.firing, tenant_wide.value) == (True, 3.0)


def test_error_rate_needs_enough_finished_messages_in_the_window(seed):
    condition = {"type": "ERROR_RATE", "integrationId": "int_a", "thresholdPercent": 50,
                 "windowSeconds": 60, "minMessages": 3}
    _message(seed, "d1", "DEAD_LETTERED", NOW - 5000)
    one_of_one = _read(seed, condition)
    assert not one_of_one.firing and one_of_one.value == 100.0  # 1 of 1: not enough
    _message(seed, "d2", "DEAD_LETTERED", NOW - 4000)
    _message(seed, "ok", "DELIVERED", NOW - 3000)
    _message(seed, "flight", "RECEIVED", NOW - 2000)  # not finished: not counted
    _message(seed, "old", "DEAD_LETTERED", NOW - 120_000)  # outside the window
    reading = _read(seed, condition)
    assert reading.firing and reading.value == pytest.approx(66.67)
    assert not _read(seed, condition | {"thresholdPercent": 70}).firing


def test_no_traffic_counts_from_the_last_message_or_the_rule_change(seed):
    condition = {"type": "NO_TRAFFIC", "integrationId": "int_a", "silenceSeconds": 60}
    assert _read(seed, condition, since=NOW - 120_000).firing  # nothing, rule 2 min old
    assert not _read(seed, condition, since=NOW - 30_000).firing  # rule 30 s old
    _message(seed, "recent", "DELIVERED", NOW - 10_000)
    assert not _read(seed, condition, since=NOW - 120_000).firing
    assert _read(seed, condition | {"silenceSeconds": 5}, since=NOW - 120_000).firing


def test_quota_fires_at_the_share_and_never_without_a_quota(seed):
    def plan(limit: int | None) -> None:
        seed.apply(Event(t.TENANT_PLAN_CHANGED, "acme", "acme", {
            "id": "acme", "plan": "pro" if limit else "enterprise",
            "messagesPerMonth": limit, "requestsPerMinute": None, "connectors": None,
            "retentionDays": None}))

    for n in range(8):
        _message(seed, f"q{n}", "DELIVERED", NOW - 1000)
    plan(10)
    reading = _read(seed, {"type": "QUOTA", "thresholdPercent": 80})
    assert (reading.firing, reading.value) == (True, 80.0)
    assert not _read(seed, {"type": "QUOTA", "thresholdPercent": 100}).firing
    plan(None)
    unlimited = _read(seed, {"type": "QUOTA", "thresholdPercent": 1})
    assert not unlimited.firing and unlimited.value is None
