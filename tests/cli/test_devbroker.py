"""The dev broker launcher: idempotent start and stop, nothing left running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integrationos.cli.devbroker import DevBroker
from integrationos.settings import Settings


def test_start_twice_stop_twice_and_nothing_is_left(tmp_path: Path, kafka_bootstrap: str,
                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IOS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IOS_KAFKA_BOOTSTRAP", "127.0.0.1:39092")
    monkeypatch.setenv("IOS_KAFKA_HEAP", "-Xms128m -Xmx512m")
    broker = DevBroker.from_settings(Settings.from_env())
    assert broker.status() == "stopped"
    try:
        assert broker.start().startswith("started")
        pid = broker.pid()
        assert pid is not None and broker.answers()
        assert broker.start().startswith("already running")
        assert (broker.log_dirs / "meta.properties").exists()
        assert "auto.create.topics.enable=false" in broker.config_file.read_text()
    finally:
        stopped = broker.stop()  # no assert here: it would hide why the block above failed
    assert stopped.startswith("stopped"), stopped
    assert broker.stop() == "not running"
    assert broker.status() == "stopped" and not broker.answers()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
