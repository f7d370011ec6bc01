"""``X-Request-Id`` on every answer, as pure ASGI middleware (the outermost one).

A client quotes it when reporting a problem, and an SDK puts it in its exceptions. The
client's own ``X-Request-Id`` is kept when it is a plain token (so the retries of one SDK
call share it); anything else (missing, too long, odd characters that could forge log
lines) is replaced by a fresh ``req_`` id. The id is also in the ASGI scope for whoever
logs the request.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-Id"
SCOPE_KEY = "integrationos.request_id"
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(headers: Headers) -> str:
    given = headers.get(HEADER, "")
    return given if _ACCEPTED.match(given) else f"req_{uuid.uuid4().hex[:24]}"


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(Headers(scope=scope))
        scope[SCOPE_KEY] = request_id

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, with_id)
