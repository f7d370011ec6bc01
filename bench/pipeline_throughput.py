"""Pipeline throughput and latency against raw Kafka (issue #6, items 1 and 2).

In one run, on the same broker, with the same Contact records (the seed's shape) and the
same topics' layout (``PARTITIONS`` each):

- **raw passthrough**: ``bench/passthrough.py``, a plain confluent-kafka consumer ->
  producer process copying the records between two topics, no transformation;
- **platform**: a Kafka source connector -> the seed's JSONata mapping -> a Kafka target
  connector, run by real ``integrationos worker`` processes with the full event trail
  (received / transformed / delivered events, projected into the read models by the
  workers' projection agents). At-least-once (``"exactlyOnce": false`` on the target:
  source -> ingest topic -> pipeline -> target) with 1, 2 and 4 workers in one consumer
  group, and exactly-once (the default for Kafka -> Kafka on the platform's cluster: no
  ingest hop, one transaction per batch) with 1 worker.

Each setup first gets a warm-up through end to end; then ``messages`` records are sent
as fast as the producer goes and throughput is messages / (first send -> last arrival at
a read_committed reader of the target). The latency under that load is mostly queueing
(the backlog), so latency is also measured at a steady rate both copies can carry: half
the 1-worker platform's throughput, for both. "trail s" is how long after the last
output the read models showed every message DELIVERED (or, after a minute, how many
they did not yet).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka.admin import AdminClient
from sqlalchemy import func, select

from bench.kafka_load import SEED_MAPPING, WARM_UP, Load, Measurement
from bench.platform import Platform
from integrationos.store.database import open_database
from integrationos.store.tables import messages
from tests.support import configure_kafka_to_kafka

NAME = "pipeline_throughput"
PARTITIONS = 12
INTEGRATION = "int_k2k"  # what tests.support.configure_kafka_to_kafka names it
TRAIL_WAIT_S = 30  # after the last output, for the read models to show every message
# messages: the headline runs (raw, platform 1 worker); variant_messages: the other worker
# counts and the exactly-once run. The 1-worker row of the scaling is the headline's (same
# size), so ``workers`` lists only the others.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"messages": 2_000, "variant_messages": 2_000, "workers": (2,),
             "steady_seconds": 2},
    "full": {"messages": 200_000, "variant_messages": 200_000, "workers": (2, 4),
             "steady_seconds": 20},
}


def _row(setup: str, workers: int, m: Measurement) -> dict[str, Any]:
    return {"setup": setup, "processes": workers, "messages": m.messages,
            "seconds": round(m.seconds, 1), "msg/s": round(m.per_second),
            "p50 ms": m.p50_ms, "p99 ms": m.p99_ms}


def _steady(load: Load, rate: float, seconds: float) -> dict[str, Any]:
    m = load.run(max(int(rate * seconds), 50), rate=rate)
    return {"steady rate msg/s": round(rate), "steady p50 ms": m.p50_ms,
            "steady p99 ms": m.p99_ms}


def raw_passthrough(count: int, steady: tuple[float, float] | None = None
                    ) -> tuple[Measurement, dict[str, Any]]:
    """The baseline copy; ``steady`` (rate, seconds) adds the steady-rate latency."""
    with Platform() as platform:
        source, target = f"{platform.prefix}.raw-in", f"{platform.prefix}.raw-out"
        platform.create_topics([source, target], PARTITIONS)
        ready = platform.data_dir / "passthrough.ready"
        copier = subprocess.Popen([sys.executable, "-m", "bench.passthrough",
                                   platform.bootstrap, source, target, str(ready)],
                                  env=platform.env)
        load = Load(platform.bootstrap, source, target)
        try:
            while not ready.exists():
                if copier.poll() is not None:
                    raise RuntimeError("the passthrough copier exited")
                time.sleep(0.05)
            load.warm_up()
            measured = load.run(count)
            extra = _steady(load, *steady) if steady else {}
        finally:
            load.close()
            copier.terminate()
            copier.wait(30)
    return measured, extra


def _wait_for_members(bootstrap: str, groups: list[str], members: int,
                      timeout: float = 120) -> None:
    """Every worker has joined each group, so no rebalance lands inside the timed run."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout
    while True:
        described = admin.describe_consumer_groups(groups)
        if all(len(f.result(30).members) >= members for f in described.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the workers did not all join {groups}")
        time.sleep(0.5)


def _trail(platform: Platform, delivered: int, timeout: float) -> dict[str, Any]:
    """How long until the read models show ``delivered`` messages DELIVERED; if not within
    ``timeout``, how many were still missing then (the projection's backlog)."""
    engine = open_database(platform.settings.database_url)
    query = select(func.count()).select_from(messages).where(messages.c.status == "DELIVERED")
    started = time.monotonic()
    try:
        while True:
            with engine.connect() as conn:
                shown = conn.execute(query).scalar_one()
            waited = time.monotonic() - started
            if shown >= delivered:
                return {"trail s": round(waited, 1), "trail backlog": 0}
            if waited > timeout:
                return {"trail s": None, "trail backlog": delivered - shown}
            time.sleep(0.5)
    finally:
        engine.dispose()


@contextmanager
def _platform_copy(workers: int, exactly_once: bool) -> Iterator[tuple[Platform, Load]]:
    """A fresh platform copying the source topic to the target with ``workers`` workers,
    and the load generator on its topics."""
    with Platform() as platform:
        source, target = f"{platform.prefix}.contacts-in", f"{platform.prefix}.contacts-out"
        platform.create_topics([source, target], PARTITIONS)
        for _ in range(workers):
            platform.start_worker()
        configure_kafka_to_kafka(platform.settings, source, target, SEED_MAPPING,
                                 exactly_once=exactly_once)
        _wait_for_members(platform.bootstrap, [f"{platform.prefix}-engine",
                                               f"{platform.prefix}-source-{INTEGRATION}"],
                          workers)
        load = Load(platform.bootstrap, source, target)
        try:
            load.warm_up()
            yield platform, load
        finally:
            load.close()


def platform_run(workers: int, exactly_once: bool, count: int,
                 steady_seconds: float | None = None) -> dict[str, Any]:
    """The platform copy with ``workers`` worker processes; one table row. With
    ``steady_seconds``, then latency at half the throughput just measured, on a fresh
    platform: right after the full-speed run the worker is still projecting that run's
    backlog, and the steady latency would measure the backlog instead."""
    with _platform_copy(workers, exactly_once) as (platform, load):
        measured = load.run(count)
        trail = _trail(platform, WARM_UP + count, TRAIL_WAIT_S)
        database = platform.database
    extra: dict[str, Any] = {}
    if steady_seconds:
        with _platform_copy(workers, exactly_once) as (_, load):
            extra = _steady(load, measured.per_second / 2, steady_seconds)
    mode = "exactly-once" if exactly_once else "at-least-once"
    return {**_row(f"platform, {mode}", workers, measured), **trail, **extra,
            "database": database}


def run(size: str) -> dict[str, Any]:
    sizes = SIZES[size]
    count, variant = int(sizes["messages"]), int(sizes["variant_messages"])
    one = platform_run(1, False, count, sizes["steady_seconds"])
    # The raw copy's steady-rate latency at the same rate as the platform's.
    steady = (one["steady rate msg/s"], sizes["steady_seconds"])
    raw, raw_steady = raw_passthrough(count, steady)
    rows = [{**_row("raw passthrough", 1, raw), "trail s": None, "trail backlog": None,
             **raw_steady,
             "database": None}, one]
    scaling = [platform_run(n, False, variant) for n in sizes["workers"]]
    eos_row = platform_run(1, True, variant)
    rows += [*scaling, eos_row]
    for row in rows:
        row["vs raw"] = round(row["msg/s"] / rows[0]["msg/s"], 3)
    ratio = rows[1]["vs raw"]
    same_size = [r for r in rows[1:-1] if r["messages"] == variant]
    one_worker = next(r for r in same_size if r["processes"] == 1)
    best = max(same_size, key=lambda r: r["msg/s"])
    eos = eos_row["msg/s"] / one_worker["msg/s"]
    return {
        "name": NAME,
        "parameters": {"size": size, "messages": count, "variant messages": variant,
                       "partitions": PARTITIONS, "mapping": "the seed's (5 fields)",
                       "database": one["database"],
                       "steady rate msg/s": steady[0], "steady seconds": steady[1]},
        "rows": rows,
        "summary": (f"platform (1 worker, at-least-once) / raw passthrough: {ratio:.3f} "
                    f"({one['msg/s']:,} vs {raw.per_second:,.0f} msg/s; goal 0.5); best "
                    f"scaling {best['processes']} workers at {best['msg/s']:,} msg/s; "
                    f"exactly-once / at-least-once (1 worker): {eos:.2f}"),
        "notes": [
            "The 2-core machine is shared with other jobs and the broker runs on it too: "
            "read the ratios, not absolute rates.",
            f"Every run sends {count:,} messages of the seed's Contact shape"
            + ("" if variant == count else
               f" (the worker-count and exactly-once rows {variant:,})")
            + f"; workers: 1 (the headline), {', '.join(map(str, sizes['workers']))}.",
            "p50/p99 under the full-speed load are mostly time spent queued behind the "
            "backlog; the steady columns are latency at a rate both copies carry (half the "
            "platform's measured rate), the platform's on a fresh platform with no backlog.",
            "trail s: seconds after the last output until every message was DELIVERED in "
            f"the read models ({one['database']}); if that took over {TRAIL_WAIT_S} s, trail "
            "backlog is how many were not yet projected then (the event trail is behind "
            "the pipeline; it catches up after the load).",
        ],
    }
