"""A worker killed with SIGKILL in the middle of a stream loses nothing."""

from __future__ import annotations

import json

from integrationos.settings import Settings
from tests.support import RecordingTarget, configure_flow, count_messages, ingest, wait_for

TOTAL = 5000


def test_sigkill_mid_stream_then_restart_delivers_every_message(worker, platform_env, capsys):
    settings = Settings.from_env()
    target = RecordingTarget()
    try:
        configure_flow(settings, target.url)
        payloads = [{"nome_completo": f"N{n} X", "email": f"m{n}@ex.pt"} for n in range(TOTAL)]
        ingest(settings, [json.dumps(p).encode() for p in payloads])
        wait_for(lambda: len(target.received) >= TOTAL // 5, 120, "a fifth of the stream")
        worker.kill()
        delivered_before_restart = len(target.received)
        assert delivered_before_restart < TOTAL, "the kill came too late to test anything"
        worker.start()
        wait_for(lambda: count_messages(settings, "DELIVERED") == TOTAL, 300, "every delivery")

        keys = target.keys()
        emails = {r["body"]["Email"] for r in target.received}
        assert emails == {p["email"] for p in payloads}
        assert len(set(keys)) == TOTAL
        duplicates = len(keys) - len(set(keys))
        # Each duplicate was a re-delivery of the same message: same idempotency key.
        by_key: dict[str, set[str]] = {}
        for r in target.received:
            by_key.setdefault(r["idempotency_key"], set()).add(r["body"]["Email"])
        assert all(len(bodies) == 1 for bodies in by_key.values())
        assert count_messages(settings) == TOTAL
        with capsys.disabled():
            print(f"\n[crash test] killed after {delivered_before_restart} deliveries; "
                  f"{TOTAL} messages, {len(keys)} deliveries, {duplicates} duplicates "
                  "(all with a repeated Idempotency-Key)")
    finally:
        target.close()
