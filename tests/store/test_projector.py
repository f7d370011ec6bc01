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


def test_offsets_of_many_partitions_are_kept_per_partition(tmp_path: Path):
    """A batch spanning partitions stores each one's next offset (read and written in one
    statement each): records already applied are skipped per partition, new ones applied."""
    engine = open_database(f"sqlite:///{tmp_path / 'parts.db'}")
    tenant = [codec.encode(Event(t.TENANT_CREATED, f"t{n}", f"t{n}",
                                 {"id": f"t{n}", "name": f"T{n}", "plan": "pro"}))
              for n in range(9)]
    first = [LogRecord("cfg", n % 3, n // 3, value) for n, value in enumerate(tenant[:6])]
    assert Projector(engine).apply(first) == 6
    assert [applied_through(engine, "cfg", p) for p in range(3)] == [2, 2, 2]
    # partition 0 again (already applied), partition 1 further on, partition 3 new
    second = [LogRecord("cfg", 0, 1, tenant[3]), LogRecord("cfg", 1, 2, tenant[6]),
              LogRecord("cfg", 3, 0, tenant[7])]
    assert Projector(engine).apply(second) == 2
    assert [applied_through(engine, "cfg", p) for p in range(4)] == [2, 3, 2, 1]
    with engine.connect() as conn:
        assert len(conn.execute(select(tenants.c.id)).all()) == 8
    engine.dispose()
