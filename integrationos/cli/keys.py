"""`integrationos keys rotate`: a new master key, and every stored credential re-sealed.

With the key file (the embedded default) the new key is put first in the file; every
process follows the file on its next seal or unknown key id. With ``IOS_MASTER_KEY`` the
operator sets ``IOS_MASTER_KEY=NEW,OLD`` on every process first (processes read it at start),
then runs this to re-seal. Re-sealing appends a ``connector.updated`` event per connector
(same config, next version, credentials sealed under the new key) and waits until the
projection shows them; ``--retire`` then drops the old keys from the key file, only if no
stored credential still needs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from integrationos.connectors.credentials import (
    KEY_FILE_NAME,
    CredentialVault,
    retire_keys,
    rotate_key_file,
)
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.projections import sealed_from_text
from integrationos.store.projector import applied_through
from integrationos.store.tables import connectors
from integrationos.topics import event_types as t
from integrationos.topics.catalog import CONFIG
from integrationos.topics.envelope import Event
from integrationos.topics.producer import LogProducer


class RotationIncomplete(RuntimeError):
    """Re-sealed events were appended but not all projected in time (run it again)."""


@dataclass(frozen=True)
class Rotation:
    key_id: str
    resealed: int
    retired: list[str]


def _stale(engine: Engine, key_id: str) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        rows = conn.execute(select(connectors).where(
            connectors.c.deleted.is_(False), connectors.c.credentials_sealed.is_not(None)))
        return [row for row in rows
                if sealed_from_text(row.credentials_sealed)["keyId"] != key_id]


def rotate(settings: Settings, retire: bool = False, wait: float = 60) -> Rotation:
    if not settings.master_key:
        rotate_key_file(settings.data_dir / KEY_FILE_NAME)
    vault = CredentialVault.from_settings(settings)
    engine = open_database(settings.database_url)
    topic = CONFIG.name(settings.topic_prefix)
    producer = LogProducer(settings.kafka_bootstrap, client_id="ios-keys")
    try:
        stale = _stale(engine, vault.key_id)
        last = None
        for row in stale:
            credentials = vault.open(sealed_from_text(row.credentials_sealed))
            last = producer.append_sync(topic, Event(t.CONNECTOR_UPDATED, row.tenant_id, row.id, {
                "id": row.id, "name": row.name, "connectorType": row.connector_type,
                "configJson": row.config_json, "credentials": vault.seal(credentials),
                "version": row.version + 1,
            }))
        if last is not None:
            deadline = time.monotonic() + wait
            while applied_through(engine, topic, last[0]) <= last[1]:
                if time.monotonic() > deadline:
                    raise RotationIncomplete("no worker applied the re-sealed credentials in "
                                             f"{wait:g} s; start one and run this again")
                time.sleep(0.1)
        retired: list[str] = []
        if retire and not settings.master_key:
            if _stale(engine, vault.key_id):
                raise RotationIncomplete("some credentials still need an old key; not retired")
            retired = retire_keys(settings.data_dir / KEY_FILE_NAME)
        return Rotation(vault.key_id, len(stale), retired)
    finally:
        producer.close()
        engine.dispose()
