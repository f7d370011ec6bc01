"""The throughput cost of exactly-once: one Kafka -> Kafka integration run at-least-once
and exactly-once in the same run, on the same broker, one worker each.

    IOS_KAFKA_BOOTSTRAP=127.0.0.1:19092 .venv/bin/python -m bench.exactly_once [--records N]

For each mode: fresh topics (own prefix), a SQLite read side, N records on a 3-partition
source topic before the integration exists, one worker (`integrationos worker`), then the
integration (`exactlyOnce` false or true on the Kafka target). A read_committed consumer of
the target topic counts outputs; the rate is taken from the first output it sees to the
N-th, so worker start-up and group joins are left out. At-least-once goes source ->
ingest topic -> pipeline -> target (two hops, each acknowledged); exactly-once goes source
-> pipeline -> target in one transaction per batch of up to 500 records. Writes
``bench/results/exactly_once.json``. Also ``python -m bench --only exactly_once``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import machine_facts, write_result
from integrationos.settings import Settings
from integrationos.topics.admin import ensure_topics
from tests.support import TopicReader, configure_kafka_to_kafka, wait_for

EXPRESSION = '{"seq": $.seq, "Email": $.email, "FirstName": $substringBefore($.name, " ")}'


def _start_worker(env: dict[str, str], data_dir: Path) -> subprocess.Popen[bytes]:
    ready = data_dir / "bench-worker.ready"
    log = (data_dir / "worker.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "integrationos.cli.main", "worker", "--loglevel", "warning"],
        env={**env, "IOS_WORKER_ID": "bench-worker"}, stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: ready.exists() or worker.poll() is not None, 120, "the worker")
    if worker.poll() is not None:
        raise RuntimeError((data_dir / "worker.log").read_text()[-3000:])
    return worker


def _run(mode: str, records: int, bootstrap: str, tmp: Path) -> dict[str, Any]:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    data_dir = tmp / prefix
    data_dir.mkdir()
    env = {**os.environ, "IOS_KAFKA_BOOTSTRAP": bootstrap, "IOS_TOPIC_PREFIX": prefix,
           "IOS_DATA_DIR": str(data_dir), "IOS_MASTER_KEY": "",
           "DATABASE_URL": f"sqlite:///{data_dir}/integrationos.db"}
    os.environ.update(env)  # configure_kafka_to_kafka reads the settings from here
    settings = Settings.from_env()
    ensure_topics(bootstrap, prefix)
    source, target = f"{prefix}.source", f"{prefix}.target"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(source, 3, 1), NewTopic(target, 3, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for n in range(records):
        producer.produce(source, key=f"k{n % 100}".encode(), value=json.dumps(
            {"seq": n, "email": f"p{n}@example.org", "name": f"Person {n}"}).encode())
        producer.poll(0)
    producer.flush(60)
    reader = TopicReader(bootstrap, target)
    worker = _start_worker(env, data_dir)
    try:
        configure_kafka_to_kafka(settings, source, target, EXPRESSION,
                                 exactly_once=mode == "exactly-once")
        first_count = wait_for(reader.poll, 300, "the first output")
        first_at = time.perf_counter()
        wait_for(lambda: reader.poll() >= records, 900, f"{records} outputs")
        seconds = time.perf_counter() - first_at
        outputs = len(reader.records)
        seqs = {json.loads(m.value())["seq"] for m in reader.records}
    finally:
        worker.terminate()
        worker.wait(60)
        reader.close()
    return {"outputs_seen": outputs, "distinct": len(seqs),
            "timed_records": records - first_count, "seconds": round(seconds, 2),
            "messages_per_s": round((records - first_count) / seconds)}


NAME = "exactly_once"
SIZES = {"tiny": 1_000, "full": 20_000}


def run(size: str) -> dict[str, Any]:
    return measure(SIZES[size], size)


def measure(records: int, size: str) -> dict[str, Any]:
    """Both modes, in the benchmark result shape ``python -m bench`` writes."""
    bootstrap = Settings.from_env().kafka_bootstrap
    saved = dict(os.environ)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = {mode: _run(mode, records, bootstrap, Path(tmp))
                       for mode in ("at-least-once", "exactly-once")}
    finally:  # _run points the settings at its own platform through the environment
        os.environ.clear()
        os.environ.update(saved)
    ratio = round(results["exactly-once"]["messages_per_s"]
                  / results["at-least-once"]["messages_per_s"], 2)
    return {
        "name": NAME,
        "parameters": {"size": size, "records": records, "source_partitions": 3,
                       "broker": "single-node Kafka (KRaft), shared"},
        "rows": [{"mode": mode, **r} for mode, r in results.items()],
        "summary": f"exactly-once / at-least-once throughput: {ratio}",
        "notes": ["The rate is taken from the first output a read_committed reader sees to "
                  "the last, so worker start-up is left out (timed_records: those after the "
                  "first output).",
                  "At-least-once takes the ingest hop (source -> ingest topic -> pipeline); "
                  "exactly-once runs the pipeline straight off the source in one transaction "
                  "per batch (docs/exactly-once.md)."],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=SIZES["full"])
    args = parser.parse_args()
    result = measure(args.records, "custom" if args.records != SIZES["full"] else "full")
    for row in result["rows"]:
        print(f"{row['mode']:14} {row['messages_per_s']:>7} msg/s  ({row['timed_records']} "
              f"records in {row['seconds']} s; {row['outputs_seen']} outputs, "
              f"{row['distinct']} distinct)")
    print(result["summary"])
    print(f"written to {write_result(result, machine_facts())}")


if __name__ == "__main__":
    main()
