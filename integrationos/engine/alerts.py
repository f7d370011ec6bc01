"""The alert engine: every ``IOS_ALERT_INTERVAL_SECONDS`` the evaluating worker reads each
enabled rule's condition (engine/alert_conditions.py) and turns changes into events on the
alerts topic: ``alert.fired`` when a condition starts to hold, ``alert.resolved`` when it
stops (or its rule is disabled or deleted), and one ``alert.notified`` per channel and
notification with its outcome (engine/alert_notify.py).

One worker evaluates: the one the group assigned partition 0 of the single-partition alerts
topic (engine/app.py checks before each tick), the way Faust's own leader election works
with its leader topic. That worker also projects the topic, and before each tick it waits
until the ``alerts`` table holds the topic up to its end, so what it decides from the table
(is this rule's alert already firing? when was it last notified?) includes what it, or the
worker that evaluated before it, did last time: notifications go out on a state change,
and again while an alert stays firing only once its rule's repeat interval has passed
since the last one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, select

from integrationos.connectors.credentials import CredentialVault
from integrationos.engine.alert_conditions import Reading, probe_connector, read_stored
from integrationos.engine.alert_notify import Notice, Notifier
from integrationos.store.alert_views import alert_view
from integrationos.store.projections import sealed_from_text
from integrationos.store.projector import applied_through
from integrationos.store.tables import alert_rules, alerts
from integrationos.topics import event_types as t
from integrationos.topics.catalog import ALERTS
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer

log = logging.getLogger(__name__)

PROJECTION_WAIT_SECONDS = 10.0
CONCURRENT_READINGS = 8


@dataclass(frozen=True)
class _Rule:
    row: Row

    @property
    def condition(self) -> dict[str, Any]:
        return json.loads(self.row.condition_json)

    @property
    def channels(self) -> list[dict[str, Any]]:
        return json.loads(self.row.channels_json)


class AlertEvaluator:
    def __init__(self, engine: Engine, producer: LogProducer, vault: CredentialVault,
                 topic_prefix: str) -> None:
        self._engine = engine
        self._producer = producer
        self._vault = vault
        self._topic = ALERTS.name(topic_prefix)
        self._notifier = Notifier(engine, vault)
        self._last_offset = -1  # of the last event this evaluator appended

    async def tick(self, log_end: int) -> None:
        """One evaluation of every rule, once the alerts table holds the topic up to
        ``log_end`` (its end offset now): after a takeover, what the previous evaluator
        appended counts too. A failure is logged and the next tick tries again (a timer that
        raises would stop the worker)."""
        try:
            if not await self._caught_up(max(log_end, self._last_offset + 1)):
                log.warning("alerts: the alerts projection is behind the topic; skipping "
                            "this evaluation")
                return
            rules, firing = await asyncio.to_thread(self._load)
            limit = asyncio.Semaphore(CONCURRENT_READINGS)

            async def one(rule: _Rule) -> None:
                async with limit:
                    try:
                        await self._evaluate(rule, firing.pop(rule.row.id, None))
                    except Exception:  # one rule's fault never stops the others
                        log.exception("alerts: rule %s could not be evaluated", rule.row.id)

            await asyncio.gather(*(one(rule) for rule in rules))
            for alert in firing.values():  # its rule was disabled or deleted
                await self._resolve(alert, None, Reading(False, None, None,
                                    "the rule was disabled or deleted"))
        except Exception:
            log.exception("alert evaluation failed; trying again at the next tick")

    async def _caught_up(self, next_offset: int) -> bool:
        """Wait (bounded) until the alerts table has every event before ``next_offset``."""
        deadline = time.monotonic() + PROJECTION_WAIT_SECONDS
        while await asyncio.to_thread(applied_through, self._engine, self._topic, 0
                                      ) < next_offset:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def _load(self) -> tuple[list[_Rule], dict[str, Row]]:
        with self._engine.connect() as conn:
            rules = [_Rule(row) for row in conn.execute(select(alert_rules).where(
                alert_rules.c.deleted.is_(False), alert_rules.c.enabled.is_(True)))]
            firing = {row.rule_id: row for row in conn.execute(
                select(alerts).where(alerts.c.state == "FIRING"))}
        return rules, firing

    async def _read(self, rule: _Rule, now_ms: int) -> Reading:
        condition = rule.condition
        if condition["type"] == "CONNECTOR_DOWN":
            return await probe_connector(self._engine, self._vault, rule.row.tenant_id,
                                         condition["connectorId"])
        return await asyncio.to_thread(read_stored, self._engine, rule.row.tenant_id,
                                       condition, rule.row.updated_at, now_ms)

    async def _evaluate(self, rule: _Rule, active: Row | None) -> None:
        now_ms = int(time.time() * 1000)
        reading = await self._read(rule, now_ms)
        if reading.firing and active is None:
            await self._fire(rule, reading)
        elif not reading.firing and active is not None:
            await self._resolve(active, rule, reading)
        elif active is not None:
            if active.last_notified_at is None:
                await self._notify(rule, active.id, "FIRED")  # the first round never got out
            elif now_ms - active.last_notified_at >= rule.row.repeat_interval_s * 1000:
                await self._notify(rule, active.id, "REPEAT")

    async def _append(self, event: Event) -> None:
        _, offset = await self._producer.append(self._topic, event)
        self._last_offset = max(self._last_offset, offset)

    async def _fire(self, rule: _Rule, reading: Reading) -> None:
        row, condition = rule.row, rule.condition
        alert_id = f"alt_{uuid.uuid4().hex[:24]}"
        await self._append(Event(t.ALERT_FIRED, row.tenant_id, row.id, {
            "alertId": alert_id, "ruleId": row.id, "ruleName": row.name,
            "severity": row.severity, "conditionType": condition["type"],
            "integrationId": condition.get("integrationId"),
            "connectorId": condition.get("connectorId"), "value": reading.value,
            "threshold": reading.threshold, "summary": reading.summary}))
        log.info("alert %s fired: rule %s, %s", alert_id, row.id, reading.summary)
        await self._notify(rule, alert_id, "FIRED")

    async def _resolve(self, active: Row, rule: _Rule | None, reading: Reading) -> None:
        await self._append(Event(t.ALERT_RESOLVED, active.tenant_id, active.rule_id, {
            "alertId": active.id, "ruleId": active.rule_id, "value": reading.value,
            "summary": reading.summary}))
        log.info("alert %s resolved: %s", active.id, reading.summary)
        if rule is not None:
            await self._notify(rule, active.id, "RESOLVED")

    async def _notify(self, rule: _Rule, alert_id: str, kind: str) -> None:
        """Send ``kind`` to every channel once the alert's latest event is in the table (the
        notification shows the alert as the API does), and record each outcome."""
        channels = rule.channels
        if not channels or not await self._caught_up(self._last_offset + 1):
            return
        row = await asyncio.to_thread(self._alert_row, alert_id)
        if row is None:
            return
        secret = self._vault.open(sealed_from_text(rule.row.secret_sealed) or {})["secret"]
        outcomes = await self._notifier.notify(
            Notice(kind, rule.row.tenant_id, alert_view(row)), channels, secret)
        for outcome in outcomes:
            if outcome.outcome != "SENT":
                log.warning("alert %s: %s notification to %s failed after %d attempt(s): %s",
                            alert_id, kind, outcome.channel, outcome.attempts, outcome.error)
            await self._append(Event(t.ALERT_NOTIFIED, rule.row.tenant_id, rule.row.id, {
                "alertId": alert_id, "ruleId": rule.row.id, "kind": kind,
                "channel": outcome.channel, "outcome": outcome.outcome,
                "attempts": outcome.attempts, "error": outcome.error}))

    def _alert_row(self, alert_id: str) -> Row | None:
        with self._engine.connect() as conn:
            return conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()

    async def close(self) -> None:
        await self._notifier.close()
