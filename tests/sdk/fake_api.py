"""A small Starlette app that answers like the API from a script, served by uvicorn on a
loopback port, for the SDK's unit tests (retries, pages, errors, streaming).

Each test queues answers per ``(method, path)``; the app records every request it gets
(headers, query, body) and answers 404 in the API's error shape when nothing is queued.
A handler may be a callable (to look at the request, or to be slow).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_path: bytes


Answer = Response | Callable[[Seen], Response]


def error(status: int, code: str, message: str = "it went wrong",
          details: list[dict[str, Any]] | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details or []}},
                        status_code=status, headers=headers)


class FakeApi:
    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], deque[Answer]] = defaultdict(deque)
        self.seen: list[Seen] = []
        self.delay = 0.0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def queue(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, path)].extend(answers)

    def requests_to(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    async def _handle(self, request: Request) -> Response:
        seen = Seen(request.method, request.url.path, dict(request.query_params),
                    {k.lower(): v for k, v in request.headers.items()}, await request.body(),
                    request.scope["raw_path"])
        self.seen.append(seen)
        if self.delay:
            await asyncio.sleep(self.delay)
        queued = self.answers[(seen.method, seen.path)]
        if not queued:
            return error(404, "NOT_FOUND", f"no route for {seen.method} {seen.path}")
        answer = queued.popleft()
        return answer(seen) if callable(answer) and not isinstance(answer, Response) else answer

    def start(self) -> FakeApi:
        app = Starlette(routes=[Route("/{path:path}", self._handle,
                                      methods=["GET", "POST", "PATCH", "PUT", "DELETE"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake API did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
