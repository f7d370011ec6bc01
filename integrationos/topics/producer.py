"""Appending to the log: one idempotent, acks=all confluent-kafka producer per process.

``append`` returns an awaitable that resolves to the record's (partition, offset) once the
broker has it, so callers (the API, the pipeline) can make durability a precondition of
acknowledging anything.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from integrationos.topics import codec
from integrationos.topics.delivery import ReportPoller
from integrationos.topics.envelope import Event

Headers = Sequence[tuple[str, bytes]]
_LIBRDKAFKA_LOG = logging.getLogger("integrationos.librdkafka")


class AppendFailed(RuntimeError):
    """The broker did not take a record (after the producer's own retries).

    ``error`` is librdkafka's error, kept so a caller can classify it (permanent or not).
    """

    def __init__(self, message: str, error: KafkaError | None = None) -> None:
        super().__init__(message)
        self.error = error


class LogProducer:
    """Thread-safe wrapper that bridges delivery reports to asyncio futures
    (topics/delivery.py)."""

    def __init__(self, bootstrap: str, client_id: str = "integrationos",
                 extra: Mapping[str, Any] | None = None) -> None:
        """``extra`` adds librdkafka settings (a transactional producer's id and timeout)."""
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": 8 * 1024 * 1024,
                # librdkafka's own lines through Python logging (served by the poller), so
                # they take the process's log format instead of raw text on stderr
                "logger": _LIBRDKAFKA_LOG,
                **(extra or {}),
            }
        )
        self._reports = ReportPoller(self._producer)

    def produce(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers = (),
        partition: int | None = None,
    ) -> asyncio.Future[tuple[int, int]]:
        """Append a record (to ``partition``, or the one its key hashes to)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, int]] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            outcome = (AppendFailed(str(err), err) if err is not None
                       else (msg.partition(), msg.offset()))
            self._reports.settle_later(loop, future, outcome)

        while True:
            try:
                placed = {} if partition is None else {"partition": partition}
                self._producer.produce(topic, value=value, key=key, headers=list(headers),
                                       on_delivery=on_delivery, **placed)
                return future
            except BufferError:  # local queue full: let the poller drain it
                self._producer.poll(0.05)

    def append(self, topic: str, event: Event, partition: int | None = None
               ) -> asyncio.Future[tuple[int, int]]:
        return self.produce(topic, event.aggregate_id.encode(), codec.encode(event),
                            codec.headers_for(event), partition)

    def produce_sync(self, topic: str, key: bytes | None, value: bytes, headers: Headers = (),
                     timeout: float = 30) -> tuple[int, int]:
        """Blocking append for command-line tools that have no event loop."""
        result: list[tuple[int, int] | Exception] = []
        done = threading.Event()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            result.append(AppendFailed(str(err)) if err else (msg.partition(), msg.offset()))
            done.set()

        self._producer.produce(topic, value=value, key=key, headers=list(headers),
                               on_delivery=on_delivery)
        if not done.wait(timeout):
            raise AppendFailed(f"no delivery report within {timeout}s")
        outcome = result[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def append_sync(self, topic: str, event: Event, timeout: float = 30) -> tuple[int, int]:
        return self.produce_sync(topic, event.aggregate_id.encode(), codec.encode(event),
                                 codec.headers_for(event), timeout)

    def close(self, timeout: float = 10) -> None:
        self._producer.flush(timeout)
        self._reports.stop(timeout)
