"""The raw baseline: a plain confluent-kafka consumer -> producer copying records from one
topic to another with no transformation, as its own process (the platform's workers are
processes too). The producer is set up as the platform's Kafka target is (acks=all,
idempotent, linger 5 ms), so the difference measured is the platform, not the settings.

    python -m bench.passthrough BOOTSTRAP SOURCE TARGET READY_FILE

Writes READY_FILE once it has its partitions; runs until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer


def copy(bootstrap: str, source: str, target: str, ready: Path) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest",
                         "group.id": f"bench-passthrough-{uuid.uuid4().hex[:8]}"})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    consumer.subscribe([source], on_assign=lambda *_: ready.write_text("assigned"))
    while not stopping:
        for message in consumer.consume(500, 0.1):
            if message.error() is None:
                while True:
                    try:
                        producer.produce(target, key=message.key(), value=message.value(),
                                         headers=message.headers())
                        break
                    except BufferError:
                        producer.poll(0.05)
        producer.poll(0)
    producer.flush(30)
    consumer.close()


if __name__ == "__main__":
    copy(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]))
