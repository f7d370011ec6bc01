"""What each alert condition reads, and whether it holds now. Pure reads of the projections
(plus, for CONNECTOR_DOWN, a real connection test), no Kafka: the evaluator
(engine/alerts.py) turns changes of these readings into events.

Conditions are the JSON the API validated (api/routes/alert_rules.py):

- ``DLQ_DEPTH``: dead letters waiting (not discarded or replayed) above ``threshold``, for
  one integration or the whole tenant.
- ``ERROR_RATE``: of the messages received in the last ``windowSeconds`` that finished
  (delivered, dead-lettered or failed), more than ``thresholdPercent`` errored, once at least
  ``minMessages`` finished (so one failure of one message does not page).
- ``NO_TRAFFIC``: the integration received nothing for ``silenceSeconds``, counted from the
  later of its last message and the rule's last change (a new rule does not fire at once).
- ``CONNECTOR_DOWN``: the connector's health test (as ``POST /v1/connectors/{id}/test``)
  answers DOWN.
- ``QUOTA``: the month's messages reached ``thresholdPercent`` of the plan's quota
  (unlimited plans never fire).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from integrationos.connectors.credentials import CredentialsUnreadable, CredentialVault
from integrationos.connectors.registry import InvalidConnectorConfig, build
from integrationos.quota import quota_state
from integrationos.store.message_stats import counts
from integrationos.store.projections import sealed_from_text
from integrationos.store.tables import connectors, dlq_entries, messages

PROBE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Reading:
    """Whether the condition holds, the measured value, and a sentence for people."""

    firing: bool
    value: float | None
    threshold: float | None
    summary: str


def _dlq_depth(conn: Connection, tenant: str, c: dict[str, Any], _since: int,
               _now: int) -> Reading:
    where = [dlq_entries.c.tenant_id == tenant, dlq_entries.c.status == "DEAD_LETTERED"]
    if c.get("integrationId"):
        where.append(dlq_entries.c.integration_id == c["integrationId"])
    depth = conn.execute(select(func.count()).select_from(dlq_entries).where(*where)).scalar_one()
    scope = f"integration {c['integrationId']}" if c.get("integrationId") else "the tenant"
    return Reading(depth > c["threshold"], float(depth), float(c["threshold"]),
                   f"{depth} dead-lettered message(s) waiting for {scope} "
                   f"(alert above {c['threshold']})")


def _error_rate(conn: Connection, tenant: str, c: dict[str, Any], _since: int,
                now: int) -> Reading:
    window = c["windowSeconds"]
    seen = counts(conn, tenant, c.get("integrationId"), now - window * 1000, now + 1)
    rate = seen.error_rate
    percent = None if rate is None else round(rate * 100, 2)
    enough = seen.finished >= c.get("minMessages", 10)
    firing = enough and percent is not None and percent > c["thresholdPercent"]
    return Reading(firing, percent, float(c["thresholdPercent"]),
                   f"{seen.errored} of {seen.finished} finished message(s) errored in the last "
                   f"{window} s ({0 if percent is None else percent}%, alert above "
                   f"{c['thresholdPercent']}% once at least {c.get('minMessages', 10)} "
                   "finished)")


def _no_traffic(conn: Connection, tenant: str, c: dict[str, Any], since: int,
                now: int) -> Reading:
    latest = conn.execute(select(func.max(messages.c.received_at)).where(
        messages.c.tenant_id == tenant,
        messages.c.integration_id == c["integrationId"])).scalar()
    reference = max(latest or 0, since)
    silent_s = max(now - reference, 0) / 1000
    return Reading(silent_s > c["silenceSeconds"], round(silent_s, 1),
                   float(c["silenceSeconds"]),
                   f"integration {c['integrationId']}: no message for {silent_s:.0f} s "
                   f"(alert after {c['silenceSeconds']} s)")


_READERS = {"DLQ_DEPTH": _dlq_depth, "ERROR_RATE": _error_rate, "NO_TRAFFIC": _no_traffic}


def read_stored(engine: Engine, tenant: str, condition: dict[str, Any], since_ms: int,
                now_ms: int) -> Reading:
    """A condition answered by the projections alone (blocking: run it off the loop).
    ``since_ms`` is the rule's last change, where silence starts counting."""
    if condition["type"] == "QUOTA":
        state = quota_state(engine, tenant, now_ms)
        if state.limit is None:
            return Reading(False, None, float(condition["thresholdPercent"]),
                           "the plan has no monthly quota")
        percent = round(state.used * 100 / state.limit, 2) if state.limit else 100.0
        return Reading(percent >= condition["thresholdPercent"], percent,
                       float(condition["thresholdPercent"]),
                       f"{state.used} of {state.limit} messages of the monthly quota used "
                       f"({percent}%, alert at {condition['thresholdPercent']}%)")
    with engine.connect() as conn:
        return _READERS[condition["type"]](conn, tenant, condition, since_ms, now_ms)


async def probe_connector(engine: Engine, vault: CredentialVault, tenant: str,
                          connector_id: str) -> Reading:
    """Test the connector with its stored config and credentials; DOWN when it cannot be
    reached, or no longer exists or cannot be built."""
    row = await asyncio.to_thread(_connector_row, engine, tenant, connector_id)
    if row is None:
        return Reading(True, 0.0, None, f"connector {connector_id} no longer exists")
    try:
        sealed = sealed_from_text(row.credentials_sealed)
        connector = build(row.connector_type, json.loads(row.config_json),
                          {} if sealed is None else vault.open(sealed))
    except (InvalidConnectorConfig, CredentialsUnreadable) as exc:
        return Reading(True, 0.0, None, f"connector {row.name!r} DOWN: {exc}")
    started = time.monotonic()
    try:
        report = await asyncio.wait_for(connector.test(PROBE_TIMEOUT_SECONDS - 0.5),
                                        PROBE_TIMEOUT_SECONDS)
        status, detail = report.status, report.detail
    except TimeoutError:
        status, detail = "DOWN", f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # a health check reports; the class name leaks nothing
        status, detail = "DOWN", f"test failed ({type(exc).__name__})"
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connector.close(), 2)
    latency = round((time.monotonic() - started) * 1000, 1)
    return Reading(status == "DOWN", 1.0 if status == "UP" else 0.0, None,
                   f"connector {row.name!r} {status}: {detail} ({latency} ms)")


def _connector_row(engine: Engine, tenant: str, connector_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(connectors).where(
            connectors.c.tenant_id == tenant, connectors.c.id == connector_id,
            connectors.c.deleted.is_(False))).first()
