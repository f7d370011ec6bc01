"""Shared fixtures: the real Kafka broker and isolated topic namespaces.

The broker is the project's own dev broker (``integrationos kafka start``): started here if
nothing answers on ``IOS_KAFKA_BOOTSTRAP`` (``.ci/run`` starts it beforehand). Each test
that needs topics gets its own ``IOS_TOPIC_PREFIX`` so tests never see each other's records.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integrationos.cli.devbroker import DevBroker
from integrationos.settings import Settings
from tests.sshd import sshd  # noqa: F401  (the real OpenSSH server fixture)
from tests.support import WorkerProcess, platform_environment


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    settings = Settings.from_env()
    broker = DevBroker.from_settings(settings)
    if not broker.answers():
        broker.start()
    return settings.kafka_bootstrap


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for the test's topics, deleted afterwards when the test used the
    broker: one that outlives many runs would otherwise keep every test's partitions open
    (it ran out of file descriptors after ~20,000)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    if "kafka_bootstrap" in request.fixturenames:
        delete_topics_named(request.getfixturevalue("kafka_bootstrap"), prefix)


def delete_topics_named(bootstrap: str, prefix: str) -> None:
    """Delete every topic whose name contains ``prefix`` (ours and Faust's internal ones)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [name for name in admin.list_topics(timeout=10).topics if prefix in name]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.exception(timeout=60)


def fresh_postgres_database(name: str) -> str:
    """A new, empty PostgreSQL database on the server named by IOS_TEST_POSTGRES_URL."""
    from sqlalchemy import create_engine, text

    admin_url = os.environ.get("IOS_TEST_POSTGRES_URL")
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the projection tests on PostgreSQL: set IOS_TEST_POSTGRES_URL")
        pytest.skip("no PostgreSQL server (set IOS_TEST_POSTGRES_URL; .ci/run starts one)")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def fresh_mariadb_database(name: str) -> str:
    """A new, empty MariaDB database on the server named by IOS_TEST_MARIADB_URL."""
    from sqlalchemy import create_engine, text

    admin_url = os.environ.get("IOS_TEST_MARIADB_URL")
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the MariaDB tests: set IOS_TEST_MARIADB_URL")
        pytest.skip("no MariaDB server (set IOS_TEST_MARIADB_URL; .ci/run starts one)")
    engine = create_engine(admin_url.replace("mariadb://", "mariadb+pymysql://", 1))
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def jdbc_settings(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A test server's URL as a JDBC connector's config and credentials."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    config = {"dialect": parsed.get_backend_name(), "host": parsed.host, "port": parsed.port,
              "database": parsed.database}
    credentials = {"username": parsed.username}
    if parsed.password:
        credentials["password"] = parsed.password
    return config, credentials


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, topic_prefix: str) -> str:
    """The read-model database of a test; tests that ask for both backends re-parametrize."""
    if request.param == "postgresql":
        return fresh_postgres_database(topic_prefix)
    return f"sqlite:///{tmp_path / 'data' / 'integrationos.db'}"


@pytest.fixture
def platform_env(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """Environment of one isolated platform: own topics, own database, own master key."""
    env = platform_environment(kafka_bootstrap, topic_prefix, tmp_path / "data", database_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env


@pytest.fixture
def worker(platform_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """One running worker on the real broker, with the test's own topics and database."""
    from integrationos.topics.admin import ensure_topics

    ensure_topics(platform_env["IOS_KAFKA_BOOTSTRAP"], platform_env["IOS_TOPIC_PREFIX"])
    process = WorkerProcess(platform_env)
    process.start()
    yield process
    process.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiProcess:
    """The real API (`integrationos api`, uvicorn) in a child process on a free port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.env = {**os.environ, **env, "IOS_API_PORT": str(self.port)}
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(env["IOS_DATA_DIR"]) / "api.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> str:
        """Start it and return its base URL once it answers."""
        import httpx

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "integrationos.cli.main", "api"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.base}/v1/openapi.json", timeout=1).status_code == 200:
                    return self.base
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"API did not start: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def api_server(platform_env: dict[str, str], worker: WorkerProcess) -> Iterator[str]:
    """The real API in a child process; yields its base URL."""
    api = ApiProcess(platform_env)
    yield api.start()
    api.stop()


@pytest.fixture
def tenant(platform_env: dict[str, str], worker: WorkerProcess) -> tuple[str, str]:
    """A tenant created the way an operator does it (`integrationos tenants create`)."""
    from integrationos.cli.tenants import change_plan, create_tenant

    created = create_tenant(Settings.from_env(), "Your Tenant", "pro")
    assert created.applied
    # The tests send bursts (500 messages in a few seconds, tight polling) that a Pro
    # tenant's 300 requests a minute would refuse: this one has a custom rate, as an
    # operator would give it (`integrationos tenants plan`).
    assert change_plan(Settings.from_env(), created.tenant_id, "pro",
                       {"requestsPerMinute": 1_000_000})
    return created.tenant_id, created.api_key


@pytest.fixture
def salesforce(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The local Salesforce emulator. Ask for it before ``worker``: the worker copies the
    environment (the emulator's CA bundle in ``REQUESTS_CA_BUNDLE``) when it starts."""
    from tests.emulators.salesforce import SalesforceEmulator

    emulator = SalesforceEmulator(tmp_path / "tls").start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_file)
    yield emulator
    emulator.stop()
