"""send_stream: NDJSON in bounded chunks, the input read only as each chunk is needed;
and the webhook helper against the platform's own signing function."""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from starlette.responses import JSONResponse

from integrationos import webhook_signatures as platform
from tests.sdk.fake_api import Seen, error

PATH = "/v1/integrations/int_1/messages"


class Counted:
    """An input that counts how much of it has been read."""

    def __init__(self, n: int) -> None:
        self.n, self.read = n, 0

    def __iter__(self):
        for i in range(self.n):
            self.read += 1
            yield {"n": i, "name": "Jo\u00e3o"}


def _accept(progress: list[int], source: Counted):
    def answer(seen: Seen) -> JSONResponse:
        progress.append(source.read)  # how much was read when this chunk arrived
        lines = seen.body.decode().splitlines()
        return JSONResponse({"messageIds": [f"msg_{json.loads(x)['n']}" for x in lines],
                             "count": len(lines), "status": "ACCEPTED"}, status_code=202)
    return answer


def test_a_large_input_goes_in_bounded_chunks_read_lazily(fake, client):
    source, progress = Counted(2000), []
    fake.queue("POST", PATH, *[_accept(progress, source) for _ in range(20)])
    result = client.messages.send_stream("int_1", source, chunk_records=300,
                                         chunk_bytes=16 * 1024)
    seen = fake.requests_to("POST", PATH)
    assert result.count == 2000 and result.requests == len(seen)
    assert result.message_ids == [f"msg_{i}" for i in range(2000)]
    assert all(s.headers["content-type"] == "application/x-ndjson" for s in seen)
    assert all(len(s.body) <= 16 * 1024 for s in seen)
    assert all(len(s.body.splitlines()) <= 300 for s in seen)
    # The first request left when only its own lines (and the one that did not fit) were read.
    assert progress[0] <= len(seen[0].body.splitlines()) + 1 < 2000
    assert progress == sorted(progress) and progress[-1] == 2000
    sent = [json.loads(line) for s in seen for line in s.body.splitlines()]
    assert sent == [{"n": i, "name": "Jo\u00e3o"} for i in range(2000)]


def test_a_file_of_ndjson_lines_is_sent_as_is_skipping_blank_lines(fake, client):
    data = b'{"n": 0}\n\n{"n": 1}\r\n{"n": 2}'
    fake.queue("POST", PATH, lambda seen: JSONResponse(
        {"messageIds": ["a", "b", "c"], "count": 3, "status": "ACCEPTED"}, status_code=202))
    result = client.messages.send_stream("int_1", io.BytesIO(data), key="customer-7")
    (seen,) = fake.seen
    assert seen.body == b'{"n": 0}\n{"n": 1}\n{"n": 2}\n'
    assert seen.headers["x-message-key"] == "customer-7" and result.count == 3


def test_a_refused_chunk_stops_the_stream(fake, client):
    source, progress = Counted(10), []
    fake.queue("POST", PATH, _accept(progress, source),
               error(422, "VALIDATION_FAILED", details=[{"field": "/line/1"}]))
    from integration_platform import ValidationError

    with pytest.raises(ValidationError) as raised:
        client.messages.send_stream("int_1", source, chunk_records=3)
    assert raised.value.details == [{"field": "/line/1"}]
    assert len(fake.seen) == 2 and source.read <= 7  # nothing read past the refused chunk


def test_the_async_client_streams_an_async_iterable(fake):
    from integration_platform import AsyncIntegrationPlatform

    source, progress = Counted(5), []
    fake.queue("POST", PATH, _accept(progress, source), _accept(progress, source))

    async def items():
        for item in source:
            yield item

    async def run():
        async with AsyncIntegrationPlatform(api_key="k", tenant_id="t",
                                            base_url=fake.url) as sdk:
            return await sdk.messages.send_stream("int_1", items(), chunk_records=3)

    result = asyncio.run(run())
    assert result.message_ids == [f"msg_{i}" for i in range(5)] and result.requests == 2


SECRET = "whsec-0123456789abcdef"


def test_the_sdk_and_the_platform_implement_one_scheme():
    """What the platform sends (HTTP targets, alert notifications: both sign with
    integrationos.webhook_signatures) the SDK verifies, and what the SDK signs for
    POST /v1/webhooks the platform verifies: the same headers, byte for byte."""
    from integration_platform import webhooks

    body = '{"FirstName": "Jo\u00e3o"}'.encode()
    at = int(time.time())
    sent = platform.sign(SECRET, body)
    webhooks.verify(SECRET, body, sent)
    webhooks.verify(SECRET, body, {name.upper(): value for name, value in sent.items()})
    assert platform.verify(SECRET, body, webhooks.sign(SECRET, body)) >= at
    assert webhooks.sign(SECRET, body, at) == platform.sign(SECRET, body, at)
    assert (webhooks.TIMESTAMP_HEADER, webhooks.SIGNATURE_HEADER, webhooks.TOLERANCE_SECONDS) \
        == (platform.TIMESTAMP_HEADER, platform.SIGNATURE_HEADER, platform.REPLAY_WINDOW_SECONDS)


@pytest.mark.parametrize("change", ["body", "secret", "old", "future", "missing", "format",
                                    "unicode-digit", "huge-timestamp"])
def test_both_refuse_anything_else(change):
    from integration_platform import webhooks
    from integration_platform.webhooks import WebhookVerificationError

    body, now = b'{"a":1}', time.time()
    headers = platform.sign(SECRET, body, int(now) - {"old": 301, "future": -301}.get(change, 0))
    if change == "body":
        body = b'{"a":2}'
    if change == "missing":
        del headers[platform.SIGNATURE_HEADER]
    if change == "format":
        headers[platform.SIGNATURE_HEADER] = headers[platform.SIGNATURE_HEADER][len("sha256="):]
    if change in ("unicode-digit", "huge-timestamp"):
        headers[platform.TIMESTAMP_HEADER] = "\u00b2" if change == "unicode-digit" else "9" * 5000
    secret = "another-secret-0123" if change == "secret" else SECRET
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(secret, body, headers, now=now)
    with pytest.raises(platform.InvalidSignature):
        platform.verify(secret, body, headers, now=now)
