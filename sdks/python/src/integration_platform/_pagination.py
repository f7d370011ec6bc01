"""Lazy iteration over the API's pages (``{data, nextCursor}``, ``?limit=&cursor=``).

Nothing is fetched until iteration starts, and a page is fetched only when the previous
one is used up, so ``for c in client.connectors.list(): ...; break`` costs one request. The
cursor is opaque: it is passed back exactly as the API gave it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, Callable, Generic, Optional, TypeVar

import httpx

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: Optional[str]


def page_parser(item: Callable[[dict[str, Any]], T]) -> Callable[[httpx.Response], Page[T]]:
    def parse(response: httpx.Response) -> Page[T]:
        document = response.json()
        return Page([item(entry) for entry in document["data"]], document.get("nextCursor"))

    return parse


class SyncPager(Generic[T]):
    """Iterates every item across pages; ``pages()`` iterates the pages themselves."""

    def __init__(self, fetch: Callable[[Optional[str]], Page[T]]) -> None:
        self._fetch = fetch

    def pages(self) -> Iterator[Page[T]]:
        cursor: Optional[str] = None
        while True:
            page = self._fetch(cursor)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items


class AsyncPager(Generic[T]):
    """``async for`` over every item across pages; ``pages()`` over the pages."""

    def __init__(self, fetch: Callable[[Optional[str]], Awaitable[Page[T]]]) -> None:
        self._fetch = fetch

    async def pages(self) -> AsyncIterator[Page[T]]:
        cursor: Optional[str] = None
        while True:
            page = await self._fetch(cursor)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item
