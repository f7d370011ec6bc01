"""``integrationos api-keys issue|list|revoke``: a tenant's API keys from the command line.

Issuing and revoking append events to the config topic, as the admin API does, then wait for
a worker to project them; listing reads the projection. Keys are printed once, at issue.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from integrationos.api.issuance import issue, revocation
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.projector import applied_through
from integrationos.store.tables import api_key_usage, api_keys, tenants
from integrationos.topics.admin import ensure_topics
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer


class KeyCommandError(Exception):
    """A refusal to show the operator (unknown tenant or key)."""


@dataclass(frozen=True)
class NewKey:
    key_id: str
    api_key: str = field(repr=False)
    applied: bool


def append_and_wait(settings: Settings, events: Iterable[Event], wait: float) -> bool:
    """Append ``events`` in order; True once a worker has projected the last of them."""
    ensure_topics(settings.kafka_bootstrap, settings.topic_prefix)
    topic = CONFIG.name(settings.topic_prefix)
    producer = LogProducer(settings.kafka_bootstrap, client_id="ios-cli")
    try:
        placed = [producer.append_sync(topic, event) for event in events]
    finally:
        producer.close()
    partition, offset = placed[-1]
    engine = open_database(settings.database_url)
    deadline = time.monotonic() + wait
    try:
        while applied_through(engine, topic, partition) <= offset:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
    finally:
        engine.dispose()
    return True


def _rows(settings: Settings, statement: Any) -> list[Any]:
    engine = open_database(settings.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(statement))
    finally:
        engine.dispose()


def issue_key(settings: Settings, tenant: str, name: str, roles: list[str],
              environments: list[str], live: bool, wait: float = 30) -> NewKey:
    if not _rows(settings, select(tenants.c.id).where(tenants.c.id == tenant)):
        raise KeyCommandError(f"no tenant {tenant!r} (has a worker projected it?)")
    try:
        issued = issue(tenant, name, roles, environments, live)
    except ValueError as exc:
        raise KeyCommandError(str(exc)) from None
    return NewKey(issued.key_id, issued.key, append_and_wait(settings, [issued.event], wait))


def list_keys(settings: Settings, tenant: str) -> list[Any]:
    """The tenant's keys with their last use: never a key, never a hash."""
    return _rows(settings, select(
        api_keys.c.key_id, api_keys.c.name, api_keys.c.prefix, api_keys.c.roles,
        api_keys.c.environments, api_keys.c.revoked, api_keys.c.created_at,
        api_key_usage.c.last_used_at,
    ).outerjoin(api_key_usage, api_key_usage.c.key_id == api_keys.c.key_id)
        .where(api_keys.c.tenant_id == tenant).order_by(api_keys.c.created_at))


def revoke_key(settings: Settings, tenant: str, key_id: str, wait: float = 30) -> bool:
    found = _rows(settings, select(api_keys.c.revoked).where(
        api_keys.c.tenant_id == tenant, api_keys.c.key_id == key_id))
    if not found:
        raise KeyCommandError(f"tenant {tenant!r} has no key {key_id!r}")
    return append_and_wait(settings, [revocation(tenant, key_id)], wait)
