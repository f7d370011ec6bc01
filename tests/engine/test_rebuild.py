"""Projections rebuilt from the log equal the live ones, row for row (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select

from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.rebuild import rebuild
from integrationos.store.tables import PROJECTED_TABLES, message_events, projection_offsets
from integrationos.topics.catalog import CONFIG, MESSAGE_EVENTS, SOURCE_CHECKPOINTS
from tests.conftest import fresh_postgres_database
from tests.support import RecordingTarget, configure_flow, count_messages, ingest, wait_for

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _dump(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            table.name: sorted(tuple(row) for row in conn.execute(select(table)))
            for table in (*PROJECTED_TABLES, projection_offsets)
        }


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_rebuild_from_offset_zero_yields_the_same_tables(worker, platform_env, tmp_path,
                                                          topic_prefix):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)
        values = [json.dumps({"nome_completo": f"R{n} Y", "email": f"r{n}@ex.pt"}).encode()
                  for n in range(300)]
        # an external producer's trace context, carried (tracing off) onto every event
        ingest(settings, [*values, b"{broken"], extra_headers=[("traceparent", TRACEPARENT)])
        wait_for(lambda: count_messages(settings) == 301 and
                 count_messages(settings, "DELIVERED") == 300, 120, "the run to settle")
    finally:
        target.close()
    worker.stop()
    live = open_database(settings.database_url)
    expected = _dump(live)
    live.dispose()
    assert len(expected["messages"]) == 301 and len(expected["message_events"]) >= 901
    traceparent_column = [c.name for c in message_events.columns].index("traceparent")
    assert {row[traceparent_column] for row in expected["message_events"]} == {
        TRACEPARENT.decode()}  # the lineage's trace id, which the rebuild must restore too

    if settings.database_url.startswith("postgresql"):
        rebuilt_url = fresh_postgres_database(f"{topic_prefix}_rebuilt")
    else:
        rebuilt_url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    rebuilt = open_database(rebuilt_url)
    topics = [spec.name(settings.topic_prefix)
              for spec in (CONFIG, MESSAGE_EVENTS, SOURCE_CHECKPOINTS)]
    read = rebuild(rebuilt, settings.kafka_bootstrap, topics)
    assert read == sum(row[2] for row in expected["projection_offsets"])
    assert _dump(rebuilt) == expected
    # Rebuilding again over the same database changes nothing.
    rebuild(rebuilt, settings.kafka_bootstrap, topics)
    assert _dump(rebuilt) == expected
    rebuilt.dispose()
