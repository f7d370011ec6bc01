"""What 1 % poison costs a stream: messages/s of a clean stream against the same stream with
1 % of its records not JSON, measured in one run on one worker (these machines are noisy:
the ratio holds, absolute rates drift). The goal is a ratio of at least 0.9: a bad record is
dead-lettered and the worker carries on at full speed.

    .venv/bin/python -m bench.poison_pill [--records 2000] [--rounds 4]

The real platform: the dev broker on ``IOS_KAFKA_BOOTSTRAP`` (started with the project's
launcher if nothing answers there), one ``integrationos worker`` on its own topics and SQLite
database, the integration ingest topic -> JSONata -> HTTP target of
``tests/engine/test_poison_pill.py``.
Each round runs one clean and one poisoned stream (ABBA order); a stream's time runs from its
first record produced until the projection shows every record delivered or dead-lettered.
Through ``python -m bench`` the result goes to ``bench/results/poison_pill.json`` and
``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from integrationos.cli.devbroker import DevBroker
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.tables import messages
from integrationos.topics.admin import ensure_topics
from tests.support import (
    RecordingTarget,
    WorkerProcess,
    configure_flow,
    count_messages,
    ingest,
    malformed_record,
    platform_environment,
)

EXPRESSION = '{"seq": $.seq, "name": $uppercase($.name)}'
POISON_EVERY = 100  # 1 %
KEYS = 64
WARM_UP = 300


def stream(records: int, poisoned: bool) -> list[bytes]:
    """``records`` payloads; with ``poisoned``, every hundredth one is not JSON."""
    return [malformed_record(n) if poisoned and n % POISON_EVERY == POISON_EVERY // 2
            else json.dumps({"seq": n, "name": f"person {n}"}).encode()
            for n in range(records)]


class Progress:
    """How many messages are settled (delivered or dead-lettered), read from the projection
    through one open engine: polling must not load the machine it measures."""

    def __init__(self, settings: Settings) -> None:
        self._engine = open_database(settings.database_url)
        self._query = select(func.count()).select_from(messages).where(
            messages.c.status.in_(("DELIVERED", "DEAD_LETTERED")))

    def settled(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(self._query).scalar_one())

    def close(self) -> None:
        self._engine.dispose()


def run_stream(settings: Settings, progress: Progress, values: list[bytes]) -> float:
    """Seconds from the first record produced until every one of them is settled."""
    before = progress.settled()
    started = time.perf_counter()
    ingest(settings, values, keys=KEYS)
    while progress.settled() < before + len(values):
        if time.perf_counter() - started > 600:
            raise TimeoutError("the stream did not settle within 600 s")
        time.sleep(0.05)
    return time.perf_counter() - started


def measure(settings: Settings, records: int, rounds: int) -> dict[str, Any]:
    """Clean and poisoned streams in ABBA order (clean first in odd rounds, poisoned first in
    even ones), so a machine that slows down or speeds up during the run favours neither."""
    progress = Progress(settings)
    run_stream(settings, progress, stream(WARM_UP, poisoned=False))
    runs: list[dict[str, Any]] = []
    for round_ in range(1, rounds + 1):
        order = (False, True) if round_ % 2 else (True, False)
        for poisoned in order:
            seconds = run_stream(settings, progress, stream(records, poisoned))
            runs.append({"stream": "1% poison" if poisoned else "clean", "round": round_,
                         "records": records, "seconds": round(seconds, 2),
                         "msgs_per_s": round(records / seconds, 1)})
    progress.close()
    clean = statistics.median(r["msgs_per_s"] for r in runs if r["stream"] == "clean")
    poison = statistics.median(r["msgs_per_s"] for r in runs if r["stream"] == "1% poison")
    return {"runs": runs, "clean_msgs_per_s": round(clean, 1),
            "poison_msgs_per_s": round(poison, 1),
            "ratio": round(poison / clean, 3),
            "dead_lettered": count_messages(settings, "DEAD_LETTERED")}


NAME = "poison_pill"
SIZES = {"tiny": (400, 1), "full": (2000, 4)}


def run(size: str, records: int | None = None, rounds: int | None = None) -> dict[str, Any]:
    """The runner's interface (``python -m bench``): one worker on its own topics."""
    records, rounds = records or SIZES[size][0], rounds or SIZES[size][1]
    broker = DevBroker.from_settings(Settings.from_env())
    if not broker.answers():
        broker.start()
    bootstrap = f"{broker.host}:{broker.port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = platform_environment(bootstrap, f"bench{uuid.uuid4().hex[:8]}",
                                   Path(tmp) / "data", f"sqlite:///{tmp}/data/integrationos.db")
        os.environ.update(env)
        settings = Settings.from_env()
        ensure_topics(settings.kafka_bootstrap, settings.topic_prefix)
        worker, target = WorkerProcess(env, loglevel="warning"), RecordingTarget()
        try:
            worker.start()
            configure_flow(settings, target.url, strategy="RETRY_5_DLQ", expression=EXPRESSION)
            results = measure(settings, records, rounds)
        finally:
            worker.stop()
            target.close()
    return {
        "name": NAME,
        "parameters": {"size": size, "records": records, "rounds": rounds, "keys": KEYS,
                       "poison_every": POISON_EVERY},
        "rows": results["runs"],
        "summary": f"1% poison / clean: {results['ratio']:.3f} (goal >= 0.9); "
                   f"{results['dead_lettered']} dead-lettered",
        "notes": [f"median msg/s: clean {results['clean_msgs_per_s']}, "
                  f"1% poison {results['poison_msgs_per_s']}",
                  "ABBA order within one run on one worker; the machine may be shared"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=SIZES["full"][0])
    parser.add_argument("--rounds", type=int, default=SIZES["full"][1])
    args = parser.parse_args()
    result = run("full", args.records, args.rounds)
    for row in result["rows"]:
        print(row)
    print(result["summary"])


if __name__ == "__main__":
    main()
