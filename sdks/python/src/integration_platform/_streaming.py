"""NDJSON chunks for ``messages.send_stream``: a large input becomes a sequence of request
bodies of bounded size, read from the input only as each chunk is needed.

The API takes ``application/x-ndjson`` on ``POST /v1/integrations/{id}/messages`` (one
message per line) but caps a request body (1 MiB by default), so a stream of any length is
sent as several requests; memory holds one chunk at a time, never the whole input.

Input items are either payloads (any JSON value other than a string: serialised here) or
lines of NDJSON text (``str``/``bytes``, as read from a file opened in text or binary
mode); blank lines are skipped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, Optional, Union

DEFAULT_CHUNK_BYTES = 256 * 1024
DEFAULT_CHUNK_RECORDS = 500
NDJSON = "application/x-ndjson"


def encode_line(item: Any) -> Optional[bytes]:
    """One NDJSON line (without its newline), or None for a blank line."""
    if isinstance(item, (bytes, bytearray)):
        line = bytes(item).strip()
    elif isinstance(item, str):
        line = item.strip().encode()
    else:
        line = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
    return line or None


class Chunker:
    """Accumulates lines; ``add`` returns a finished chunk when the next line would not fit.
    A single line larger than the limit becomes a chunk of its own (the API then answers
    413 for it, which is the honest outcome)."""

    def __init__(self, max_bytes: int = DEFAULT_CHUNK_BYTES,
                 max_records: int = DEFAULT_CHUNK_RECORDS) -> None:
        if max_bytes < 1 or max_records < 1:
            raise ValueError("chunk limits must be positive")
        self.max_bytes, self.max_records = max_bytes, max_records
        self._lines: list[bytes] = []
        self._size = 0

    def add(self, item: Any) -> Optional[bytes]:
        line = encode_line(item)
        if line is None:
            return None
        ready = None
        if self._lines and (self._size + len(line) + 1 > self.max_bytes
                            or len(self._lines) >= self.max_records):
            ready = self.flush()
        self._lines.append(line)
        self._size += len(line) + 1
        return ready

    def flush(self) -> Optional[bytes]:
        if not self._lines:
            return None
        chunk = b"\n".join(self._lines) + b"\n"
        self._lines, self._size = [], 0
        return chunk


def chunks(source: Iterable[Any], max_bytes: int = DEFAULT_CHUNK_BYTES,
           max_records: int = DEFAULT_CHUNK_RECORDS) -> Iterator[bytes]:
    chunker = Chunker(max_bytes, max_records)
    for item in source:
        ready = chunker.add(item)
        if ready is not None:
            yield ready
    last = chunker.flush()
    if last is not None:
        yield last


async def async_chunks(source: Union[Iterable[Any], AsyncIterable[Any]],
                       max_bytes: int = DEFAULT_CHUNK_BYTES,
                       max_records: int = DEFAULT_CHUNK_RECORDS) -> AsyncIterator[bytes]:
    if not isinstance(source, AsyncIterable):
        for chunk in chunks(source, max_bytes, max_records):
            yield chunk
        return
    chunker = Chunker(max_bytes, max_records)
    async for item in source:
        ready = chunker.add(item)
        if ready is not None:
            yield ready
    last = chunker.flush()
    if last is not None:
        yield last
