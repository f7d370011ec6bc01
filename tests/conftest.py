"""Shared fixtures: the real Kafka broker and isolated topic namespaces.

The broker is the project's own dev broker (``integrationos kafka start``): started here if
nothing answers on ``IOS_KAFKA_BOOTSTRAP`` (``.ci/run`` starts it beforehand). Each test
that needs topics gets its own ``IOS_TOPIC_PREFIX`` so tests never see each other's records.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrationos.cli.devbroker import DevBroker
from integrationos.settings import Settings


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    settings = Settings.from_env()
    broker = DevBroker.from_settings(settings)
    if not broker.answers():
        broker.start()
    return settings.kafka_bootstrap


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def platform_env(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Environment of one isolated platform: own topics, own SQLite file, own master key."""
    env = {
        "IOS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "IOS_TOPIC_PREFIX": topic_prefix,
        "IOS_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": os.environ.get("IOS_TEST_DATABASE_URL")
        or f"sqlite:///{tmp_path / 'data' / 'integrationos.db'}",
        "IOS_MASTER_KEY": "",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
