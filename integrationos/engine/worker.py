"""Running one engine worker process (start more for more throughput: one consumer group)."""

from __future__ import annotations

import faust

from integrationos.engine.app import create_app
from integrationos.settings import Settings
from integrationos.topics.admin import ensure_topics


def run_worker(settings: Settings, loglevel: str = "warning") -> None:
    ensure_topics(settings.kafka_bootstrap, settings.topic_prefix)
    app, _runtime = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
