"""`integrationos keys rotate --retire` on a running platform: every credential re-sealed
under the new key, the old key gone, deliveries keep authenticating, no secret in clear."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from integrationos.connectors.credentials import key_id_of
from integrationos.settings import Settings
from integrationos.store.database import open_database
from integrationos.store.projections import sealed_from_text
from integrationos.store.tables import connectors
from tests.support import RecordingTarget, configure_flow, count_messages, ingest, wait_for

TOKEN = "s3cr3t-token"  # what tests.support.configure_flow seals into the connector


def _connector(settings: Settings):  # type: ignore[no-untyped-def]
    engine = open_database(settings.database_url)
    with engine.connect() as conn:
        row = conn.execute(select(connectors).where(connectors.c.id == "con_1")).one()
    engine.dispose()
    return row


def test_rotation_reseals_everything_and_deliveries_go_on(worker, platform_env):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)
        before = _connector(settings)
        old_key_id = sealed_from_text(before.credentials_sealed)["keyId"]
        ingest(settings, [json.dumps({"nome_completo": "A B", "email": "1@x"}).encode()])
        wait_for(lambda: count_messages(settings, "DELIVERED") == 1, 60, "a delivery")

        rotated = subprocess.run(
            [sys.executable, "-m", "integrationos.cli.main", "keys", "rotate", "--retire"],
            env={**os.environ, **platform_env}, capture_output=True, text=True, timeout=120)
        assert rotated.returncode == 0, rotated.stderr
        assert "re-sealed 1 connector(s)" in rotated.stdout and old_key_id in rotated.stdout

        after = _connector(settings)
        key_file = Path(platform_env["IOS_DATA_DIR"]) / "master.key"
        (only_key,) = key_file.read_text().split()
        new_key_id = sealed_from_text(after.credentials_sealed)["keyId"]
        assert new_key_id != old_key_id
        assert key_id_of(base64.b64decode(only_key)) == new_key_id
        assert after.version == before.version + 1

        # The running worker follows the rotated key file: the target still gets the token.
        ingest(settings, [json.dumps({"nome_completo": "C D", "email": "2@x"}).encode()])
        wait_for(lambda: count_messages(settings, "DELIVERED") == 2, 60, "a second delivery")
        assert [r["authorization"] for r in target.received] == [f"Bearer {TOKEN}"] * 2
        files = [p for p in Path(platform_env["IOS_DATA_DIR"]).rglob("*") if p.is_file()]
        assert [p for p in files if TOKEN.encode() in p.read_bytes()] == []
    finally:
        target.close()
