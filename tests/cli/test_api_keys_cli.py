"""`integrationos api-keys issue|list|revoke` and `tenants create`, in-process: the events they
append are applied by the real projector (a stand-in for broker + worker)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from integrationos.api.auth import hash_key
from integrationos.cli import api_keys as cli_keys
from integrationos.cli.main import main
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.projector import LogRecord, Projector, applied_through
from integrationos.store.tables import api_keys
from integrationos.topics import codec
from integrationos.topics.envelope import Event


class ProjectedLog:
    """A LogProducer that the projector reads at once."""

    def __init__(self, _bootstrap: str, client_id: str) -> None:
        self.engine = open_database(Settings.from_env().database_url)

    def append_sync(self, topic: str, event: Event) -> tuple[int, int]:
        offset = applied_through(self.engine, topic, 0)
        Projector(self.engine).apply([LogRecord(topic, 0, offset, codec.encode(event))])
        return 0, offset

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("IOS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ios.db'}")
    monkeypatch.setattr(cli_keys, "LogProducer", ProjectedLog)
    monkeypatch.setattr(cli_keys, "ensure_topics", lambda *_: [])
    return Settings.from_env()


def _keys(settings: Settings) -> list:
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        rows = list(conn.execute(select(api_keys).order_by(api_keys.c.created_at)))
    engine.dispose()
    return rows


def test_issue_list_revoke(cli, capsys):
    assert main(["tenants", "create", "Acme Corp"]) == 0
    first = re.search(r"api key: (\S+)", capsys.readouterr().out).group(1)
    (row,) = _keys(cli)
    assert (row.tenant_id, row.roles, row.key_hash) == ("acme-corp", "admin", hash_key(first))

    assert main(["api-keys", "issue", "--tenant", "acme-corp", "--name", "ci", "--role",
                 "operator", "--role", "viewer", "--env", "DEV", "--test"]) == 0
    out = capsys.readouterr().out
    key = re.search(r"api key: (ip_test_\S+)", out).group(1)
    key_id = re.search(r"key id:  (\S+)", out).group(1)
    issued = next(r for r in _keys(cli) if r.key_id == key_id)
    assert (issued.roles, issued.environments, issued.live) == ("operator,viewer", "DEV", False)

    assert main(["api-keys", "list", "--tenant", "acme-corp"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and key not in listing and hash_key(key) not in listing

    assert main(["api-keys", "revoke", "--tenant", "acme-corp", key_id]) == 0
    assert [r.revoked for r in _keys(cli) if r.key_id == key_id] == [True]


@pytest.mark.parametrize("argv", [
    ["api-keys", "issue", "--tenant", "nobody", "--name", "x", "--role", "admin"],
    ["api-keys", "revoke", "--tenant", "acme-corp", "key_nope"],
])
def test_unknown_tenants_and_keys_are_refused(cli, capsys, argv):
    assert main(["tenants", "create", "Acme Corp"]) == 0
    assert main(argv) == 1
    assert "error:" in capsys.readouterr().err
