"""``integrationos tenants plan``: what it refuses before anything reaches the log."""

from __future__ import annotations

import dataclasses

import pytest

from integrationos.cli.main import main
from integrationos.cli.tenants import change_plan
from integrationos.plans import override_problems
from integrationos.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return dataclasses.replace(Settings.from_env(), kafka_bootstrap="127.0.0.1:9",
                               database_url=f"sqlite:///{tmp_path / 'cli.db'}")


def test_overrides_out_of_range_are_named():
    assert override_problems({"messagesPerMonth": -1, "connectors": -1,
                              "requestsPerMinute": 600, "retentionDays": 90}) == []
    assert override_problems({"requestsPerMinute": -1, "retentionDays": 91,
                              "connectors": 0}) == [
        "requestsPerMinute must be a positive integer",
        "retentionDays must be 1 to 90",
        "connectors must be a positive integer or -1 (unlimited)",
    ]


def test_an_unknown_tenant_or_plan_is_refused(settings):
    with pytest.raises(ValueError, match="no tenant 'ghost'"):
        change_plan(settings, "ghost", "pro", {})
    with pytest.raises(ValueError, match="plan must be one of free, pro, enterprise"):
        change_plan(settings, "acme", "gold", {})


def test_the_command_reports_a_refusal_and_exits_2(settings, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("IOS_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    assert main(["tenants", "plan", "acme", "--plan", "pro", "--retention-days", "400"]) == 2
    assert "retentionDays must be 1 to 90" in capsys.readouterr().err
