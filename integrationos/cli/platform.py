"""`integrationos up`: the whole platform on the embedded defaults, in one command.

Starts the dev broker (detached, as `integrationos kafka start` does), then one worker and
the API as child processes, and stops them all (broker included) on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from integrationos.cli.devbroker import DevBroker
from integrationos.settings import Settings
from integrationos.topics.admin import ensure_topics


def run_platform(settings: Settings, workers: int = 1, keep_broker: bool = False) -> int:
    broker = DevBroker.from_settings(settings)
    print(f"kafka: {broker.start()}", flush=True)
    ensure_topics(settings.kafka_bootstrap, settings.topic_prefix)
    children: list[subprocess.Popen[bytes]] = []
    cli = [sys.executable, "-m", "integrationos.cli.main"]
    import os

    for n in range(workers):
        env = {**os.environ, "IOS_WORKER_ID": f"worker-{n + 1}"}
        if settings.worker_metrics_port:  # one port each, from the one configured
            env["IOS_WORKER_METRICS_PORT"] = str(settings.worker_metrics_port + n)
        children.append(subprocess.Popen([*cli, "worker"], env=env))
    children.append(subprocess.Popen([*cli, "api"]))
    print(f"api: http://{settings.api_host}:{settings.api_port}/v1 "
          f"(reference: /v1/docs); {workers} worker(s); Ctrl-C stops everything", flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while not stopping:
        for child in children:
            if child.poll() is not None:
                print(f"process {child.args} exited with {child.returncode}", flush=True)
                stopping, code = True, 1
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
    if not keep_broker:
        print(f"kafka: {broker.stop()}", flush=True)
    return code
