"""The projector applies each record once, and skips (never stops at) what tables refuse."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector, applied_through
from integrationos.store.tables import api_keys, tenants
from integrationos.topics import codec
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event


def _key(key_id: str, key_hash: str) -> bytes:
    return codec.encode(Event(t.API_KEY_ISSUED, "acme", key_id, {
        "keyId": key_id, "keyHash": key_hash, "prefix": "ip_test_", "name": key_id}))


def test_a_refused_event_is_skipped_and_the_batch_goes_on(tmp_path: Path):
    engine = open_database(f"sqlite:///{tmp_path / 'p.db'}")
    values = [
        codec.encode(Event(t.TENANT_CREATED, "acme", "acme",
                           {"id": "acme", "name": "Acme", "plan": "pro"})),
        _key("key_1", "h" * 64),
        b"\x00junk",  # undecodable: skipped
        _key("key_2", "h" * 64),  # the same hash: the unique constraint refuses it
        _key("key_3", "g" * 64),
    ]
    records = [LogRecord("cfg", 0, offset, value) for offset, value in enumerate(values)]
    assert Projector(engine).apply(records) == 3
    with engine.connect() as conn:
        keys = [row.key_id for row in conn.execute(select(api_keys).order_by(api_keys.c.key_id))]
        assert keys == ["key_1", "key_3"]
        assert conn.execute(select(tenants.c.id)).scalar_one() == "acme"
    assert applied_through(engine, "cfg", 0) == 5
    # The same records again change nothing: offsets are stored with the rows.
    assert Projector(engine).apply(records) == 0
    engine.dispose()
