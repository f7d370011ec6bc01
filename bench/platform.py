"""One isolated platform for a benchmark: its own topic prefix, data directory and read
database on the shared broker, and real ``integrationos worker`` / ``api`` processes.

The read side is PostgreSQL when ``IOS_TEST_POSTGRES_URL`` names a server (a fresh
database per platform, as the tests do; `make bench` starts one), else a SQLite file:
several workers writing projections need PostgreSQL (docs/ARCHITECTURE.md, Scaling).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import create_engine, text

from integrationos.settings import Settings
from integrationos.topics.admin import ensure_topics

CLI = [sys.executable, "-m", "integrationos.cli.main"]


class Platform:
    """Use as a context manager: everything it started is stopped, its files removed."""

    def __init__(self) -> None:
        base = Settings.from_env()
        self.prefix = f"b{uuid.uuid4().hex[:10]}"
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"ios-bench-{self.prefix}-"))
        self.database = "sqlite"
        database_url = f"sqlite:///{self.data_dir / 'integrationos.db'}"
        admin_url = os.environ.get("IOS_TEST_POSTGRES_URL", "").replace(
            "postgresql://", "postgresql+psycopg://", 1)
        if admin_url:
            engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.prefix}"'))
            engine.dispose()
            database_url = admin_url.rsplit("/", 1)[0] + f"/{self.prefix}"
            self.database = "postgresql"
        self.settings = dataclasses.replace(
            base, topic_prefix=self.prefix, data_dir=self.data_dir, database_url=database_url,
            master_key="")
        self.env = {**os.environ, "IOS_KAFKA_BOOTSTRAP": base.kafka_bootstrap,
                    "IOS_TOPIC_PREFIX": self.prefix, "IOS_DATA_DIR": str(self.data_dir),
                    "DATABASE_URL": database_url, "IOS_MASTER_KEY": ""}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.api: subprocess.Popen[bytes] | None = None
        ensure_topics(self.bootstrap, self.prefix)

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def create_topics(self, names: list[str], partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        for future in admin.create_topics(
                [NewTopic(name, partitions, 1) for name in names]).values():
            future.result(30)

    def start_worker(self, timeout: float = 120) -> float:
        """Start one more worker; return its cold start (process start -> partitions
        assigned, which is when it writes its ready file)."""
        worker_id = f"bench-worker-{len(self.workers) + 1}"
        ready = self.data_dir / f"{worker_id}.ready"
        log = (self.data_dir / f"{worker_id}.log").open("ab")
        started = time.monotonic()
        process = subprocess.Popen([*CLI, "worker", "--loglevel", "warning"],
                                   env={**self.env, "IOS_WORKER_ID": worker_id},
                                   stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(process)
        while not ready.exists():
            if process.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f"{worker_id} did not start: {self.log(worker_id)[-3000:]}")
            time.sleep(0.02)
        return time.monotonic() - started

    def start_api(self, timeout: float = 60) -> str:
        """Start the API; return its base URL once it answers."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = (self.data_dir / "api.log").open("ab")
        self.api = subprocess.Popen([*CLI, "api"], env={**self.env, "IOS_API_PORT": str(port)},
                                    stdout=log, stderr=subprocess.STDOUT)
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}/v1/openapi.json", timeout=1).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
            if self.api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {self.log('api')[-3000:]}")
            time.sleep(0.1)

    def log(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        processes = [*self.workers, *([self.api] if self.api else [])]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.workers, self.api = [], None
