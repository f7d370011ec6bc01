"""Sending one alert notification to each of a rule's channels, with retries.

- ``email``: through one of the tenant's SMTP connectors (its server, security, credentials
  and sender); the rule gives the recipients, the subject and text are the alert's.
- ``webhook``: a JSON POST signed with the rule's secret in the platform's one scheme
  (``integrationos.webhook_signatures``: ``X-Timestamp`` and ``X-Signature: sha256=<hex>``,
  as HTTP targets sign); a 2xx answer is success.

Each channel gets ``ATTEMPTS`` tries, ``RETRY_DELAYS`` apart, unless a failure is final (a 4xx
other than 408/429, an SMTP 5xx, a connector that no longer exists). Nothing raises: every
channel ends as an ``Outcome`` the evaluator records as an ``alert.notified`` event. Outcome
errors say what failed, never a secret (webhook URLs are shown without their query string).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, select

from integrationos.connectors.base import ConnectorError, OutboundMessage
from integrationos.connectors.credentials import CredentialsUnreadable, CredentialVault
from integrationos.connectors.registry import InvalidConnectorConfig, build
from integrationos.store.projections import sealed_from_text
from integrationos.store.tables import connectors
from integrationos.webhook_signatures import sign

ATTEMPTS = 3
RETRY_DELAYS = (1.0, 3.0)
WEBHOOK_TIMEOUT_SECONDS = 10.0
# What an email channel keeps of its SMTP connector's config: where and how to connect, and
# the sender. Recipients, subject and body are the alert's own.
_SMTP_TRANSPORT = ("host", "port", "security", "caCertificate", "from", "timeoutMs")
_EVENT_NAMES = {"FIRED": "alert.fired", "RESOLVED": "alert.resolved",
                "REPEAT": "alert.reminder"}


@dataclass(frozen=True)
class Notice:
    """What is being said: the alert as the API shows it, and why it is said now."""

    kind: str  # FIRED, RESOLVED, REPEAT
    tenant: str
    alert: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    channel: str
    outcome: str  # SENT, FAILED
    attempts: int
    error: str | None


class _Final(Exception):
    """A failure that another attempt would repeat."""


def channel_label(channel: dict[str, Any]) -> str:
    if channel["type"] == "email":
        return f"email via {channel['connectorId']} to {', '.join(channel['recipients'])}"
    url = urlsplit(channel["url"])
    return f"webhook {url.scheme}://{url.netloc}{url.path}"


def _subject(notice: Notice) -> str:
    alert = notice.alert
    state = {"FIRED": "FIRING", "RESOLVED": "RESOLVED", "REPEAT": "STILL FIRING"}[notice.kind]
    return f"[{alert['severity'].upper()}] {state}: {alert['ruleName']}"


def _text(notice: Notice) -> str:
    alert = notice.alert
    lines = [_subject(notice), "", alert["summary"]]
    if alert.get("resolvedSummary"):
        lines.append(f"Now: {alert['resolvedSummary']}")
    lines += ["", f"Alert {alert['id']} of rule {alert['ruleId']} (tenant {notice.tenant}),",
              f"fired at {alert['firedAt']}."]
    if alert.get("resolvedAt"):
        lines.append(f"Resolved at {alert['resolvedAt']}.")
    return "\n".join(lines) + "\n"


class Notifier:
    def __init__(self, engine: Engine, vault: CredentialVault) -> None:
        self._engine = engine
        self._vault = vault
        self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)

    async def notify(self, notice: Notice, channels: list[dict[str, Any]],
                     secret: str) -> list[Outcome]:
        """Every channel at once; each result in the channels' order."""
        return list(await asyncio.gather(*(self._one(notice, c, secret) for c in channels)))

    async def _one(self, notice: Notice, channel: dict[str, Any], secret: str) -> Outcome:
        delivery_id = uuid.uuid4().hex  # the same on every attempt: receivers can dedupe
        error = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if channel["type"] == "email":
                    await self._email(notice, channel, delivery_id)
                else:
                    await self._webhook(notice, channel, secret, delivery_id)
                return Outcome(channel_label(channel), "SENT", attempt, None)
            except _Final as exc:
                return Outcome(channel_label(channel), "FAILED", attempt, str(exc)[:500])
            except Exception as exc:  # retried, then recorded; never raised to the worker
                error = str(exc)[:500] or type(exc).__name__
            if attempt < ATTEMPTS:
                await asyncio.sleep(RETRY_DELAYS[attempt - 1])
        return Outcome(channel_label(channel), "FAILED", ATTEMPTS, error)

    async def _email(self, notice: Notice, channel: dict[str, Any], delivery_id: str) -> None:
        row = await asyncio.to_thread(self._smtp_row, notice.tenant, channel["connectorId"])
        if row is None:
            raise _Final(f"no SMTP connector {channel['connectorId']}")
        stored = json.loads(row.config_json)
        config = {key: stored[key] for key in _SMTP_TRANSPORT if key in stored}
        config |= {"to": "$.recipients", "subject": "$.subject", "text": "$.text"}
        try:
            sealed = sealed_from_text(row.credentials_sealed)
            smtp = build("SMTP", config, {} if sealed is None else self._vault.open(sealed))
        except (InvalidConnectorConfig, CredentialsUnreadable) as exc:
            raise _Final(f"SMTP connector {row.id} unusable: {exc}") from None
        try:
            await smtp.write(OutboundMessage(
                message_id=notice.alert["id"], idempotency_key=delivery_id,
                tenant=notice.tenant, integration_id=notice.alert.get("integrationId") or "",
                key=None, payload={"recipients": channel["recipients"],
                                   "subject": _subject(notice), "text": _text(notice)}))
        except ConnectorError as exc:
            if not exc.retryable:
                raise _Final(f"{exc.code}: {exc.message}") from None
            raise RuntimeError(f"{exc.code}: {exc.message}") from None
        finally:
            with contextlib.suppress(Exception):
                await smtp.close()

    def _smtp_row(self, tenant: str, connector_id: str) -> Any:
        with self._engine.connect() as conn:
            return conn.execute(select(connectors).where(
                connectors.c.tenant_id == tenant, connectors.c.id == connector_id,
                connectors.c.connector_type == "SMTP",
                connectors.c.deleted.is_(False))).first()

    async def _webhook(self, notice: Notice, channel: dict[str, Any], secret: str,
                       delivery_id: str) -> None:
        body = json.dumps({"event": _EVENT_NAMES[notice.kind], "deliveryId": delivery_id,
                           "tenant": notice.tenant, "alert": notice.alert},
                          ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **sign(secret, body),
                   "X-IntegrationOS-Event": _EVENT_NAMES[notice.kind],
                   "X-IntegrationOS-Delivery": delivery_id}
        try:
            answer = await self._http.post(channel["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"{type(exc).__name__}: cannot reach the webhook") from None
        if answer.is_success:
            return
        if 400 <= answer.status_code < 500 and answer.status_code not in (408, 429):
            raise _Final(f"HTTP {answer.status_code}")
        raise RuntimeError(f"HTTP {answer.status_code}")

    async def close(self) -> None:
        await self._http.aclose()
