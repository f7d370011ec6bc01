"""Load for Kafka -> Kafka benchmarks: the seed's Contact records onto a source topic, and a
reader of the target topic that notes when each one arrives.

End-to-end latency is taken per record without touching the payload (the mapping under
test decides the output): each record's key is ``contact-<n>``, both the raw copy and the
platform keep the key, and the producer and the reader run in this one process, so the
send time of ``n`` and the arrival of key ``contact-<n>`` are read off the same clock.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer

from bench.common import percentile

# The seed's mapping (developer docs, quickstart step 4) and its Contact shape.
SEED_MAPPING = ('{"FirstName": $substringBefore($.nome_completo, " "), '
                '"LastName": $substringAfter($.nome_completo, " "), "Email": $.email, '
                '"Phone": $.telefone, "IsActive__c": $.ativo}')
WARM_UP = 50


def contact(n: int) -> bytes:
    return json.dumps({"nome_completo": f"João Silva {n}", "email": f"joao.silva{n}@ex.pt",
                       "telefone": f"+351 912 {n % 1000:03d} {n // 1000 % 1000:03d}",
                       "ativo": n % 10 != 0}, ensure_ascii=False).encode()


class Arrivals:
    """A consumer of the target topic in its own group, read_committed (what exactly-once
    promises to), noting the first arrival time of every key on a background thread."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed", "auto.offset.reset": "earliest",
            "enable.auto.commit": False})
        self._consumer.subscribe([topic])
        self.times: dict[bytes, float] = {}
        self.records = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            batch = self._consumer.consume(1000, 0.05)
            now = time.monotonic()
            for message in batch:
                if message.error() is None:
                    self.records += 1
                    self.times.setdefault(message.key(), now)

    def wait(self, keys: list[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(k in self.times for k in keys):
            if time.monotonic() > deadline:
                missing = sum(k not in self.times for k in keys)
                raise TimeoutError(f"{missing} of {len(keys)} records did not arrive "
                                   f"within {timeout:.0f} s")
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


@dataclass(frozen=True)
class Measurement:
    messages: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


class Load:
    """Sends Contact records to the source topic of a running copy (raw or platform) and
    measures them at the target."""

    def __init__(self, bootstrap: str, source: str, target: str) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                                   "acks": "all", "enable.idempotence": True})
        self._source = source
        self._arrivals = Arrivals(bootstrap, target)
        self._next = 0

    def warm_up(self, timeout: float = 180) -> None:
        """A few records through end to end, so group joins and first connections are
        behind us before anything is timed."""
        keys = [f"warm-up-{uuid.uuid4().hex[:6]}-{i}".encode() for i in range(WARM_UP)]
        for key in keys:
            self._producer.produce(self._source, key=key, value=contact(0))
        self._producer.flush(30)
        self._arrivals.wait(keys, timeout)

    def run(self, count: int, rate: float | None = None, timeout: float = 1800) -> Measurement:
        """Send ``count`` records, as fast as possible or at ``rate`` per second, and wait
        for all of them at the target. Throughput is from the first send to the last
        arrival; latency is per record, send to first arrival."""
        first = self._next
        self._next += count
        keys = [f"contact-{n}".encode() for n in range(first, first + count)]
        sent: list[float] = []
        started = time.monotonic()
        for i, key in enumerate(keys):
            if rate is not None:
                due = started + i / rate
                if due > time.monotonic():
                    self._producer.flush(1)
                    time.sleep(max(due - time.monotonic(), 0))
            sent.append(time.monotonic())
            while True:
                try:
                    self._producer.produce(self._source, key=key, value=contact(first + i))
                    break
                except BufferError:
                    self._producer.poll(0.05)
            self._producer.poll(0)
        self._producer.flush(60)
        self._arrivals.wait(keys, timeout)
        arrived = [self._arrivals.times[k] for k in keys]
        latencies = [(a - s) * 1000 for a, s in zip(arrived, sent, strict=True)]
        return Measurement(count, max(arrived) - started, round(percentile(latencies, 50), 1),
                           round(percentile(latencies, 99), 1))

    def close(self) -> None:
        self._producer.flush(10)
        self._arrivals.close()
