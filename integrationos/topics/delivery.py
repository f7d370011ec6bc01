"""Delivery reports to asyncio futures: a confluent-kafka ``Producer`` polled on a thread of
its own, its reports handed to the event loop once per poll rather than once per record.

librdkafka calls a record's ``on_delivery`` on whichever thread polls; the future it
settles belongs to an event loop, which must be woken to settle it. Waking the loop per
record (``call_soon_threadsafe``) cost a loop wake-up and a self-pipe write for each of the
five or six records a message produces; collected and handed over after each poll, a whole
poll's reports cost one (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from typing import Any

from confluent_kafka import Producer

_Report = tuple[asyncio.Future[Any], Any]  # the future, and its result or exception


class ReportPoller:
    """Polls ``producer`` until stopped; ``settle_later`` queues a report for its loop."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._pending: list[tuple[asyncio.AbstractEventLoop, _Report]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll_forever, daemon=True)
        self._thread.start()

    def settle_later(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
                     outcome: Any) -> None:
        """Called from ``on_delivery`` (any polling thread): ``outcome`` becomes the
        future's result, or its exception if it is one, at the end of this poll."""
        with self._lock:
            self._pending.append((loop, (future, outcome)))

    def stop(self, timeout: float) -> None:
        """Stop polling; reports already received (say, by a flush) are still handed over."""
        self._stopping.set()
        self._thread.join(timeout)

    def _poll_forever(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)
            self._hand_over()
        self._hand_over()

    def _hand_over(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        by_loop: dict[asyncio.AbstractEventLoop, list[_Report]] = defaultdict(list)
        for loop, report in pending:
            by_loop[loop].append(report)
        for loop, reports in by_loop.items():
            with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle_all, reports)


def _settle_all(reports: list[_Report]) -> None:
    for future, outcome in reports:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
