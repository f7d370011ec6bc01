"""A Faust transport whose consumer reads only committed records (read_committed).

Faust's aiokafka consumer reads ``read_uncommitted`` unless the whole app runs Faust's own
``exactly_once`` guarantee. Exactly-once integrations write message events inside Kafka
transactions (``engine/exactly_once.py``); read uncommitted, the projections would apply
events of transactions that were aborted (a worker killed mid-batch), recording steps that
never happened. For records written outside transactions (every other topic) the two
levels read the same records.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ReadCommittedThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The constructor's ``isolation_level`` is kept here and handed to the fetcher when
        # the consumer starts; Faust builds the consumer without a way to pass it in.
        consumer._isolation_level = "read_committed"
        return consumer


class _ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the read_committed consumer."""

    Consumer = _ReadCommittedConsumer
