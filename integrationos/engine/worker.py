"""Running one engine worker process (start more for more throughput: one consumer group)."""

from __future__ import annotations

import faust

from integrationos import logs, metrics, tracing
from integrationos.engine.app import create_app
from integrationos.settings import Settings
from integrationos.topics.admin import ensure_topics


def run_worker(settings: Settings, loglevel: str = "warning") -> None:
    tracing.configure("integrationos-worker", settings.worker_id)
    ensure_topics(settings.kafka_bootstrap, settings.topic_prefix)
    app, _runtime = create_app(settings)
    if settings.worker_metrics_port:
        metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True,
                          logging_config=logs.dict_config(loglevel))
    try:
        worker.execute_from_commandline()
    finally:
        tracing.shutdown()
