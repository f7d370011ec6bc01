"""The development broker: a real single-node Apache Kafka 4 (KRaft) on 127.0.0.1.

Jars come from Maven Central through a small pom (`broker/pom.xml`) and
``mvn dependency:copy-dependencies`` into a cache directory; the storage is formatted
once with ``kafka.tools.StorageTool``; ``kafka.Kafka`` runs detached with a pid file.
Every command is idempotent: starting a running broker or stopping a stopped one is a no-op.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from integrationos.settings import Settings

KAFKA_VERSION = os.environ.get("IOS_KAFKA_VERSION", "4.1.1")
POM = Path(__file__).with_name("broker") / "pom.xml"


class BrokerError(RuntimeError):
    """The broker could not be fetched, formatted or started."""


@dataclass(frozen=True)
class DevBroker:
    """Paths and ports of the development broker, derived from the settings."""

    home: Path
    jars: Path
    host: str
    port: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DevBroker:
        cache = Path(
            os.environ.get("IOS_KAFKA_CACHE", Path.home() / ".cache" / "integrationos")
        )
        host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
        return cls(
            home=settings.data_dir / "kafka",
            jars=cache / f"kafka-{KAFKA_VERSION}" / "libs",
            host=host or "127.0.0.1",
            port=int(port),
        )

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_dirs(self) -> Path:
        return self.home / "data"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def answers(self, timeout: float = 2.0) -> bool:
        admin = AdminClient({"bootstrap.servers": f"{self.host}:{self.port}",
                             "log_level": 0, "logger": _silent_logger()})
        try:
            admin.list_topics(timeout=timeout)
        except Exception:
            return False
        return True

    def fetch(self) -> None:
        if self.jars.is_dir() and any(self.jars.glob("kafka_2.13-*.jar")):
            return
        if shutil.which("mvn") is None:
            raise BrokerError("Maven (mvn) is needed to fetch the Kafka jars")
        self.jars.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(POM), f"-Dkafka.version={KAFKA_VERSION}",
             "dependency:copy-dependencies", f"-DoutputDirectory={self.jars}",
             "-DincludeScope=runtime"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(self.jars, ignore_errors=True)
            raise BrokerError(f"mvn failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        controller_port = self.port + 1
        self.config_file.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{self.host}:{controller_port}",
                    f"listeners=PLAINTEXT://{self.host}:{self.port},"
                    f"CONTROLLER://{self.host}:{controller_port}",
                    f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.log_dirs}",
                    "auto.create.topics.enable=false",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "message.max.bytes=8388608",
                    "",
                ]
            )
        )

    def format_storage(self) -> None:
        if (self.log_dirs / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            ["java", "-cp", f"{self.jars}/*", "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(self.config_file)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise BrokerError(f"StorageTool format failed:\n{result.stdout}{result.stderr}")

    def start(self, wait_seconds: float = 90) -> str:
        if self.pid() is not None and self.answers():
            return f"already running (pid {self.pid()}) on {self.host}:{self.port}"
        if self.pid() is None and self.answers():
            return (f"another broker already answers on {self.host}:{self.port}; using it "
                    "(it is not ours: `kafka stop` will leave it running)")
        self.fetch()
        self.write_config()
        self.format_storage()
        heap = os.environ.get("IOS_KAFKA_HEAP", "-Xms256m -Xmx1g").split()
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                ["java", *heap, "-XX:+UseG1GC", "-cp", f"{self.jars}/*", "kafka.Kafka",
                 str(self.config_file)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(f"broker exited with {process.returncode}; see {self.log_file}")
            if self.answers(timeout=1.0):
                return f"started (pid {process.pid}) on {self.host}:{self.port}"
            time.sleep(0.5)
        self.stop()
        raise BrokerError(f"broker did not answer within {wait_seconds}s; see {self.log_file}")

    def stop(self, wait_seconds: float = 30) -> str:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return "not running"
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and self.pid() is not None:
            _reap(pid)
            time.sleep(0.2)
        if self.pid() is not None:
            os.killpg(pid, signal.SIGKILL)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return f"stopped (pid {pid})"

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return "stopped"
        state = "answering" if self.answers() else "not answering"
        return f"running (pid {pid}) on {self.host}:{self.port}, {state}"


def _reap(pid: int) -> None:
    """Collect the exit status if the broker is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _silent_logger():  # type: ignore[no-untyped-def]
    import logging

    logger = logging.getLogger("integrationos.devbroker.probe")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger
