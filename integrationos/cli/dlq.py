"""``integrationos dlq replay``: request a replay through the HTTP API and follow it.

The CLI is an API client like any other (the API checks, records and authorises the
request), so it needs the API's address and a key: ``--api-url`` / ``IOS_API_URL``
(default ``http://127.0.0.1:8080``), ``IOS_API_KEY`` and ``IOS_TENANT_ID``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8080"
POLL_SECONDS = 0.5
BAR_WIDTH = 30


class ReplayFailed(RuntimeError):
    """The API refused the request, or the replay ended as FAILED."""


def add_parser(sub: Any) -> None:
    dlq = sub.add_parser("dlq", help="the dead-letter queue")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    replay = dlq_sub.add_parser(
        "replay", help="send dead-lettered messages through their integration again")
    replay.add_argument("--message-id", action="append", dest="message_ids",
                        help="this message (repeat for several); otherwise the filters")
    replay.add_argument("--integration", help="only this integration's messages")
    replay.add_argument("--code", help="only this error code, e.g. HTTP_400")
    replay.add_argument("--from", dest="since", help="dead-lettered at or after (ISO-8601)")
    replay.add_argument("--to", dest="until", help="dead-lettered at or before (ISO-8601)")
    replay.add_argument("--text", help="error message contains this text")
    replay.add_argument("--api-url", default=os.environ.get("IOS_API_URL", DEFAULT_API_URL))
    replay.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to follow the replay before giving up (default 600)")
    replay.set_defaults(run=run_replay)


def run_replay(args: argparse.Namespace, _settings: Any) -> int:
    key, tenant = os.environ.get("IOS_API_KEY"), os.environ.get("IOS_TENANT_ID")
    if not key or not tenant:
        print("set IOS_API_KEY and IOS_TENANT_ID", file=sys.stderr)
        return 2
    body = _request_body(args)
    with httpx.Client(base_url=args.api_url, timeout=30,
                      headers={"X-API-Key": key, "X-Tenant-Id": tenant}) as client:
        try:
            replay = follow(client, body, args.timeout, sys.stderr)
        except ReplayFailed as exc:
            print(f"\nreplay failed: {exc}", file=sys.stderr)
            return 1
    outcome = replay["outcome"]
    print(f"replay {replay['replayId']}: {replay['sent']} sent, {replay['skipped']} skipped; "
          f"{outcome['delivered']} delivered, {outcome['deadLettered']} dead-lettered again, "
          f"{outcome['inFlight']} still in flight")
    return 0


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.message_ids:
        return {"messageIds": args.message_ids}
    wanted = {"integrationId": args.integration, "code": args.code, "from": args.since,
              "to": args.until, "q": args.text}
    return {"filter": {k: v for k, v in wanted.items() if v is not None}}


def follow(client: httpx.Client, body: dict[str, Any], timeout: float, out: TextIO
           ) -> dict[str, Any]:
    """Request the replay, then redraw a progress bar until every message it sent has
    reached an end (delivered, dead-lettered again ...) or ``timeout`` passes."""
    response = client.post("/v1/dlq/replay", json=body)
    if response.status_code >= 400:
        error = response.json().get("error", {})
        details = "; ".join(f"{d.get('field')}: {d.get('message')}"
                            for d in error.get("details") or [])
        raise ReplayFailed(f"{error.get('code')}: {error.get('message')} {details}".strip())
    replay = response.json()
    deadline = time.monotonic() + timeout
    while True:
        _draw(replay, out)
        if replay["status"] == "FAILED":
            raise ReplayFailed(replay["error"] or "the worker gave up")
        if _settled(replay) or time.monotonic() > deadline:
            out.write("\n")
            return replay
        time.sleep(POLL_SECONDS)
        replay = client.get(f"/v1/dlq/replays/{replay['replayId']}").json()


def _settled(replay: dict[str, Any]) -> bool:
    return replay["status"] == "COMPLETED" and replay["outcome"]["inFlight"] == 0


def _draw(replay: dict[str, Any], out: TextIO) -> None:
    """``[#########.........] 300/1000 sent, 280 delivered`` on one redrawn line."""
    total = replay["total"] or 0
    done = replay["outcome"]["delivered"] + replay["outcome"]["deadLettered"]
    filled = BAR_WIDTH if total == 0 else min(BAR_WIDTH, BAR_WIDTH * done // total)
    out.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {replay['sent']}/{total} sent, "
              f"{replay['outcome']['delivered']} delivered, "
              f"{replay['outcome']['deadLettered']} dead-lettered ({replay['status'].lower()})")
    out.flush()
