"""A real HTTP server standing in for an alert webhook receiver: it keeps each POST's raw
body and headers, and checks signatures with the helper receivers use."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from integrationos.webhook_signatures import verify
from tests.support import _Server


class WebhookReceiver:
    """A real HTTP server that keeps each POST's raw body and headers, answering ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts?token=kept-out-of-logs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verified(self, secrets: dict[str, str]) -> list[dict[str, Any]]:
        """Every request, each checked with the helper receivers use and the secret of the
        rule it says it is from (``secrets``: rule id -> secret)."""
        with self._lock:
            received = list(self.requests)
        bodies = []
        for headers, body in received:
            claimed = json.loads(body)
            verify(secrets[claimed["alert"]["ruleId"]], body, headers)
            bodies.append(claimed)
        return bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
