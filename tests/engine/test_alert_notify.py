"""Alert notifications against real receivers: what is final, what is retried, and that
every channel ends as an outcome instead of an exception."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading

import pytest

from integrationos.connectors.credentials import CredentialVault
from integrationos.engine.alert_notify import Notice, Notifier
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.webhook_signatures import verify
from tests.api.conftest import Seeder
from tests.webhook_receiver import WebhookReceiver

ALERT = {"id": "alt_1", "ruleId": "rul_1", "ruleName": "r", "severity": "warning",
         "state": "FIRING", "conditionType": "QUOTA", "integrationId": None,
         "connectorId": None, "value": 90.0, "threshold": 80.0, "summary": "90% used",
         "resolvedSummary": None, "firedAt": "2026-01-01T00:00:00.000Z", "resolvedAt": None,
         "lastNotifiedAt": None}


@pytest.fixture
def notifier(tmp_path):
    settings = dataclasses.replace(
        Settings.from_env(), data_dir=tmp_path, topic_prefix="tnotify", master_key="",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = open_database(settings.database_url)
    seed = Seeder(engine, settings)
    seed.connector("acme", "con_http", "not a mailer")
    yield Notifier(engine, CredentialVault.from_settings(settings))
    engine.dispose()


def _notify(notifier: Notifier, channels: list[dict]) -> list:
    async def run() -> list:
        try:
            return await notifier.notify(Notice("FIRED", "acme", ALERT), channels, "whsec_k")
        finally:
            await notifier.close()

    return asyncio.run(run())


def test_a_4xx_is_final_a_5xx_is_retried_until_it_passes(notifier):
    gone, flaky = WebhookReceiver(status=404), WebhookReceiver(status=503)

    def recover() -> None:
        flaky.status = 200

    timer = threading.Timer(0.5, recover)  # the receiver recovers between attempts
    timer.start()
    try:
        outcomes = _notify(notifier, [{"type": "webhook", "url": gone.url},
                                      {"type": "webhook", "url": flaky.url}])
    finally:
        timer.cancel()
        gone.close()
        flaky.close()
    assert [(o.outcome, o.attempts, o.error) for o in outcomes] == [
        ("FAILED", 1, "HTTP 404"), ("SENT", 2, None)]
    headers, body = flaky.requests[-1]
    assert "X-IntegrationOS-Signature" not in headers  # the one scheme, not a second
    verify("whsec_k", body, headers)
    assert json.loads(body)["alert"] == ALERT
    assert len({h["X-IntegrationOS-Delivery"] for h, _ in flaky.requests}) == 1


def test_unreachable_and_misconfigured_channels_end_as_failures(notifier):
    outcomes = _notify(notifier, [
        {"type": "webhook", "url": "http://127.0.0.1:9/hook?secret=x"},
        {"type": "email", "connectorId": "con_http", "recipients": ["a@b.example"]},
        {"type": "email", "connectorId": "con_gone", "recipients": ["a@b.example"]},
    ])
    assert [(o.channel, o.outcome, o.attempts) for o in outcomes] == [
        ("webhook http://127.0.0.1:9/hook", "FAILED", 3),
        ("email via con_http to a@b.example", "FAILED", 1),
        ("email via con_gone to a@b.example", "FAILED", 1),
    ]
    assert "cannot reach" in outcomes[0].error
    assert outcomes[1].error == "no SMTP connector con_http"
