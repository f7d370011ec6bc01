"""Poison pills: 1 % of a stream is not JSON. Each one lands in the dead-letter queue with
its reason and every other record is delivered; the worker never stops for them.
Real worker, real broker, a real HTTP target."""

from __future__ import annotations

import json

from integrationos.settings import Settings
from integrationos.topics.catalog import DEAD_LETTER
from tests.support import (
    IdempotentTarget,
    configure_flow,
    count_messages,
    dead_letter_rows,
    first_number,
    ingest,
    malformed_record,
    read_topic,
    wait_for,
)

TOTAL = 3000
POISON_EVERY = 100  # 1 %
EXPRESSION = '{"seq": $.seq, "name": $uppercase($.name)}'


def _stream() -> tuple[list[bytes], set[int]]:
    """The record values, and the sequence numbers of the malformed ones."""
    poison = {n for n in range(TOTAL) if n % POISON_EVERY == POISON_EVERY // 2}
    values = [malformed_record(n) if n in poison
              else json.dumps({"seq": n, "name": f"person {n}"}).encode()
              for n in range(TOTAL)]
    return values, poison


def test_one_percent_malformed_records_are_dead_lettered_and_the_rest_delivered(
        worker, platform_env):
    settings = Settings.from_env()
    target = IdempotentTarget()
    values, poison = _stream()
    try:
        configure_flow(settings, target.url, strategy="RETRY_5_DLQ", expression=EXPRESSION)
        ingest(settings, values)
        wait_for(lambda: count_messages(settings, "DELIVERED")
                 + count_messages(settings, "DEAD_LETTERED") == TOTAL, 240,
                 "every record delivered or dead-lettered")

        applied = sorted(body["seq"] for body in target.applied_bodies())
        assert applied == sorted(set(range(TOTAL)) - poison)
        assert all(body["name"] == f"PERSON {body['seq']}" for body in target.applied_bodies())
        assert count_messages(settings, "DELIVERED") == TOTAL - len(poison)
        assert count_messages(settings) == TOTAL

        entries = dead_letter_rows(settings)
        assert len(entries) == len(poison)
        assert {row.code for row in entries.values()} == {"MALFORMED_JSON"}
        assert {row.stage for row in entries.values()} == {"ingest"}
        assert all(row.message.startswith("not JSON: ") for row in entries.values())

        records = read_topic(settings.kafka_bootstrap, DEAD_LETTER.name(settings.topic_prefix))
        by_id = {dict(r.headers())["ios-message-id"].decode(): r for r in records}
        assert set(by_id) == set(entries)
        assert {first_number(r.value()) for r in by_id.values()} == poison
        assert {r.value() for r in by_id.values()} == {values[n] for n in poison}
        assert all(dict(r.headers())["ios-dlq-code"] == b"MALFORMED_JSON"
                   and dict(r.headers())["ios-dlq-message"].startswith(b"not JSON: ")
                   for r in by_id.values())
        assert worker.process.poll() is None
    finally:
        target.close()
