"""The log producer on the real broker: every append's future settles with its own offset,
failures settle as ``AppendFailed``, and reports that arrive during ``close`` still settle
(delivery reports are handed to the loop in batches: topics/delivery.py)."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from integrationos.topics.producer import AppendFailed, LogProducer


def _create(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[
        topic].result(30)


def test_concurrent_appends_each_settle_with_their_offset(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}.reports"
    _create(kafka_bootstrap, topic)
    producer = LogProducer(kafka_bootstrap)

    async def append_all() -> list[tuple[int, int]]:
        futures = [producer.produce(topic, f"k{n}".encode(), b"v") for n in range(3000)]
        return await asyncio.wait_for(asyncio.gather(*futures), 60)

    try:
        placed = asyncio.run(append_all())
    finally:
        producer.close()
    assert len(set(placed)) == 3000
    per_partition = {p: sorted(o for q, o in placed if q == p) for p, _ in placed}
    assert all(offsets == list(range(len(offsets))) for offsets in per_partition.values())


def test_a_refused_record_settles_as_append_failed(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}.small"
    _create(kafka_bootstrap, topic)
    producer = LogProducer(kafka_bootstrap)

    async def append_to_missing_partition() -> None:
        await asyncio.wait_for(producer.produce(topic, b"k", b"v", partition=7), 60)

    try:
        with pytest.raises(AppendFailed):
            asyncio.run(append_to_missing_partition())
    finally:
        producer.close()


def test_reports_received_while_closing_still_settle(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}.closing"
    _create(kafka_bootstrap, topic)

    async def append_then_close() -> list[tuple[int, int]]:
        producer = LogProducer(kafka_bootstrap)
        futures = [producer.produce(topic, None, b"v") for _ in range(200)]
        await asyncio.to_thread(producer.close)  # flushes: the reports arrive in there
        return await asyncio.wait_for(asyncio.gather(*futures), 10)

    assert len(asyncio.run(append_then_close())) == 200
