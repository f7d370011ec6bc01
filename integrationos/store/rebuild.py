"""Rebuilding the read models from the log: read every event topic from offset 0.

Run it with the workers stopped (or into another database), and after any upgrade that
changes the tables: it drops and recreates the projected tables, replays the config and
message-event topics up to their current end through the same ``Projector`` the workers
use, and so yields exactly the tables the live run built.
"""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from sqlalchemy import Engine

from integrationos.store.projector import LogRecord, Projector
from integrationos.store.tables import PROJECTED_TABLES, metadata, projection_offsets

BATCH = 5000


def rebuild(engine: Engine, bootstrap: str, topics: list[str]) -> int:
    """Replay ``topics`` into emptied tables; return the number of records read."""
    # Drop and recreate rather than empty: after an upgrade the tables may have new columns.
    metadata.drop_all(engine, tables=[*PROJECTED_TABLES, projection_offsets])
    metadata.create_all(engine)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "integrationos-rebuild",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        # As the live projections read: exactly-once integrations write message events in
        # transactions, and an aborted one's events never happened.
        "isolation.level": "read_committed",
    })
    try:
        ends: dict[tuple[str, int], int] = {}
        assignment = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=30).topics[topic]
            for partition in meta.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 30)
                if high > 0:
                    ends[(topic, partition)] = high
                    assignment.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        consumer.assign(assignment)
        projector, read, batch = Projector(engine), 0, []
        while ends:
            for msg in consumer.consume(BATCH, timeout=1.0):
                if msg.error():
                    raise RuntimeError(str(msg.error()))
                tp = (msg.topic(), msg.partition())
                if tp not in ends or msg.offset() >= ends[tp]:
                    continue
                batch.append(LogRecord(msg.topic(), msg.partition(), msg.offset(), msg.value()))
            if batch:
                projector.apply(batch)
                read += len(batch)
                batch = []
            # The position, not the last record seen: a partition written in transactions
            # ends with a commit or abort marker, which is never handed out as a record.
            for position in consumer.position([TopicPartition(t, p) for t, p in ends]):
                if position.offset >= ends[(position.topic, position.partition)]:
                    del ends[(position.topic, position.partition)]
        return read
    finally:
        consumer.close()
