"""Footprint (issue #6, item 7): resident memory of a worker and of the API at rest and
under the pipeline load, and the worker's cold start.

The processes are the real ones (``integrationos worker``, ``integrationos api``) of one
platform; their resident set is read from ``/proc/<pid>/status`` (``VmRSS``), sampled every
0.2 s. At rest: after both started and the integration is configured, before any message.
Under load: the peak while the Kafka -> seed mapping -> Kafka pipeline of
``bench.pipeline_throughput`` carries ``messages`` records. Cold start: process start ->
partitions assigned (when the worker writes its ready file), each start on fresh topics
of its own, median of ``starts``. Baseline for the memory: an idle Python interpreter
with confluent-kafka imported (what any Kafka client in Python costs).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.kafka_load import SEED_MAPPING, Load
from bench.pipeline_throughput import INTEGRATION, PARTITIONS, _wait_for_members
from bench.platform import Platform
from tests.support import configure_kafka_to_kafka

NAME = "footprint"
SIZES = {"tiny": {"messages": 2_000, "starts": 1}, "full": {"messages": 50_000, "starts": 3}}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


class PeakRss:
    """The largest resident set of a process while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _baseline_rss() -> float:
    """An idle interpreter with confluent-kafka imported, for scale."""
    idle = subprocess.Popen([sys.executable, "-c",
                             "import confluent_kafka, sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    try:
        time.sleep(1.5)
        return rss_mib(idle.pid)
    finally:
        idle.communicate(b"")


def _cold_start() -> float:
    with Platform() as platform:
        return platform.start_worker()


def run(size: str) -> dict[str, Any]:
    messages, starts = SIZES[size]["messages"], SIZES[size]["starts"]
    baseline = _baseline_rss()
    cold = [_cold_start() for _ in range(starts)]
    with Platform() as platform:
        source, target = f"{platform.prefix}.contacts-in", f"{platform.prefix}.contacts-out"
        platform.create_topics([source, target], PARTITIONS)
        platform.start_worker()
        platform.start_api()
        configure_kafka_to_kafka(platform.settings, source, target, SEED_MAPPING,
                                 exactly_once=False)
        _wait_for_members(platform.bootstrap, [f"{platform.prefix}-engine",
                                               f"{platform.prefix}-source-{INTEGRATION}"], 1)
        worker, api = platform.workers[0].pid, platform.api.pid if platform.api else 0
        time.sleep(2)
        at_rest = {"worker": rss_mib(worker), "API": rss_mib(api)}
        load = Load(platform.bootstrap, source, target)
        try:
            with PeakRss(worker) as worker_peak, PeakRss(api) as api_peak:
                load.warm_up()
                measured = load.run(messages)
        finally:
            load.close()
        loaded = {"worker": worker_peak.peak, "API": api_peak.peak}
    rows = [{"process": name, "RSS at rest MiB": round(at_rest[name], 1),
             "RSS peak under load MiB": round(loaded[name], 1),
             "vs idle python+confluent-kafka": round(loaded[name] / baseline, 1)}
            for name in ("worker", "API")]
    rows.append({"process": "idle python+confluent-kafka (baseline)",
                 "RSS at rest MiB": round(baseline, 1), "RSS peak under load MiB": None,
                 "vs idle python+confluent-kafka": 1.0})
    cold_s = statistics.median(cold)
    return {
        "name": NAME,
        "parameters": {"size": size, "load messages": messages,
                       "load msg/s": round(measured.per_second), "cold starts": starts},
        "rows": rows,
        "summary": (f"worker {at_rest['worker']:.0f} MiB at rest, {loaded['worker']:.0f} MiB "
                    f"under load ({loaded['worker'] / baseline:.1f}x an idle Kafka client); "
                    f"API {at_rest['API']:.0f}/{loaded['API']:.0f} MiB; worker cold start "
                    f"{cold_s:.1f} s (median of {starts}: "
                    f"{', '.join(f'{c:.1f}' for c in cold)} s)"),
        "notes": [
            "Cold start: `integrationos worker` process start until its partitions are "
            "assigned (its ready file), on fresh topics; includes topic checks, the Faust "
            "app and the consumer group join.",
            "The API is not on the pipeline's path (records come from a Kafka source); its "
            "memory under load is what it holds while the workers run.",
            "The 2-core machine is shared with other jobs: start times vary with its load.",
        ],
    }
