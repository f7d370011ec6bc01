"""Tenant administration from the command line: events on the config topic."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select

from integrationos import plans
from integrationos.api.auth import hash_key, new_api_key
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.projector import applied_through
from integrationos.store.tables import tenants
from integrationos.topics import event_types as t
from integrationos.topics.admin import ensure_topics
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer

PLANS = tuple(plans.PLANS)


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    api_key: str = field(repr=False)
    applied: bool


def tenant_id_for(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise ValueError("a tenant name needs at least one letter or digit")
    return slug[:64]


def create_tenant(settings: Settings, name: str, plan: str, wait: float = 30) -> NewTenant:
    """Append TenantCreated and ApiKeyIssued, then wait for a worker to project them.

    The key exists only in this result (the log holds its hash): the caller shows it once.
    """
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")
    tenant_id = tenant_id_for(name)
    key = new_api_key(live=True)
    ensure_topics(settings.kafka_bootstrap, settings.topic_prefix)
    topic = CONFIG.name(settings.topic_prefix)
    producer = LogProducer(settings.kafka_bootstrap, client_id="ios-cli")
    try:
        producer.append_sync(topic, Event(t.TENANT_CREATED, tenant_id, tenant_id,
                                          {"id": tenant_id, "name": name, "plan": plan}))
        key_id = "key_" + uuid.uuid4().hex[:20]
        partition, offset = producer.append_sync(topic, Event(
            t.API_KEY_ISSUED, tenant_id, key_id,
            {"keyId": key_id, "keyHash": hash_key(key), "prefix": key[:12], "name": "first key"},
        ))
    finally:
        producer.close()
    engine = open_database(settings.database_url)
    deadline = time.monotonic() + wait
    try:
        while applied_through(engine, topic, partition) <= offset:
            if time.monotonic() > deadline:
                return NewTenant(tenant_id, key, applied=False)
            time.sleep(0.05)
    finally:
        engine.dispose()
    return NewTenant(tenant_id, key, applied=True)


def change_plan(settings: Settings, tenant_id: str, plan: str,
                overrides: dict[str, int | None], wait: float = 30) -> bool:
    """Append ``tenant.plan_changed`` (the plan and every override: one not given goes back
    to the plan's value) and wait for a worker to project it; True once applied.

    Messages parked over the old quota are released by the worker (engine/quota_release.py)
    once the new limits allow them."""
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")
    problems = plans.override_problems(overrides)
    if problems:
        raise ValueError("; ".join(problems))
    engine = open_database(settings.database_url)
    try:
        with engine.connect() as conn:
            if conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id)).first() is None:
                raise ValueError(f"no tenant {tenant_id!r}")
        topic = CONFIG.name(settings.topic_prefix)
        producer = LogProducer(settings.kafka_bootstrap, client_id="ios-cli")
        try:
            partition, offset = producer.append_sync(topic, Event(
                t.TENANT_PLAN_CHANGED, tenant_id, tenant_id,
                {"id": tenant_id, "plan": plan, **dict.fromkeys(plans.OVERRIDE_FIELDS),
                 **overrides}))
        finally:
            producer.close()
        deadline = time.monotonic() + wait
        while applied_through(engine, topic, partition) <= offset:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
    finally:
        engine.dispose()
