"""``IntegrationPlatform`` (blocking) and ``AsyncIntegrationPlatform`` (asyncio): the same
resources over ``httpx.Client`` or ``httpx.AsyncClient``.

Each client only knows how to execute a ``Call`` (with retries), fetch pages and send a
stream of chunks; everything about the API itself is in ``_resources`` and ``_core``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, Callable, Optional, TypeVar, Union

import httpx

from integration_platform._core import (
    NOT_GIVEN,
    Call,
    Config,
    finish,
    new_request_id,
    request_arguments,
)
from integration_platform._errors import APIConnectionError
from integration_platform._models import StreamResult
from integration_platform._pagination import AsyncPager, Page, SyncPager, page_parser
from integration_platform._resources import (
    Alerts,
    ApiKeys,
    Connectors,
    Dlq,
    Environments,
    Flows,
    Integrations,
    Lookups,
    Messages,
    Sandbox,
    Schemas,
    Transformations,
    UsageResource,
)
from integration_platform._streaming import async_chunks, chunks

T = TypeVar("T")
Timeout = Union[float, httpx.Timeout, None]


class BaseClient:
    """The resources, attached to whichever executor the subclass provides."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.connectors = Connectors(self)
        self.transformations = Transformations(self)
        self.integrations = Integrations(self)
        self.flows = Flows(self)
        self.sandbox = Sandbox(self)
        self.messages = Messages(self)
        self.dlq = Dlq(self)
        self.usage = UsageResource(self)
        self.api_keys = ApiKeys(self)
        self.alerts = Alerts(self)
        self.environments = Environments(self)
        self.schemas = Schemas(self)
        self.lookups = Lookups(self)

    def request(self, method: str, path: str, *, json: Any = NOT_GIVEN,
                params: Optional[dict[str, Any]] = None) -> Any:
        """Any API route the resources do not wrap (``/v1/connector-types/{type}``, one
        version of a transformation, a route newer than this SDK): the decoded JSON answer
        (None for 204), with the same credentials, retries (by method) and exceptions."""
        return self._execute(Call(method.upper(), path, _decoded, params=params, json=json))

    def _execute(self, call: Call[Any]) -> Any:
        raise NotImplementedError

    def _paginate(self, path: str, params: dict[str, Any],
                  item: Callable[[dict[str, Any]], Any]) -> Any:
        raise NotImplementedError

    def _send_chunks(self, call_for: Callable[[bytes], Call[Any]], source: Any,
                     chunk_bytes: int, chunk_records: int) -> Any:
        raise NotImplementedError

    @staticmethod
    def _page_call(path: str, params: dict[str, Any], cursor: Optional[str],
                   item: Callable[[dict[str, Any]], Any]) -> Call[Page[Any]]:
        return Call("GET", path, page_parser(item), params={**params, "cursor": cursor})


def _decoded(response: httpx.Response) -> Any:
    return response.json() if response.content else None


def _accepted_ids(answer: Any) -> list[str]:
    return list(answer["messageIds"])


class IntegrationPlatform(BaseClient):
    """The blocking client. ``api_key``, ``tenant_id`` and ``base_url`` default to
    ``INTEGRATION_PLATFORM_API_KEY``, ``INTEGRATION_PLATFORM_TENANT_ID`` and
    ``INTEGRATION_PLATFORM_BASE_URL`` (else ``http://127.0.0.1:8080``)."""

    def __init__(self, api_key: Optional[str] = None, tenant_id: Optional[str] = None,
                 base_url: Optional[str] = None, *, timeout: Timeout = None,
                 max_retries: int = 3, http_client: Optional[httpx.Client] = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``http_client``: bring your own (proxies, transports); it gets the base URL and
        auth headers per request, not at construction."""
        super().__init__(Config.resolve(api_key, tenant_id, base_url, timeout, max_retries))
        self._http = http_client or httpx.Client()
        self._sleep = sleep

    def _execute(self, call: Call[T]) -> T:
        request_id = new_request_id()
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    **request_arguments(self.config, call, request_id))
            except httpx.TransportError as exc:
                delay = self.config.retry.after_error(call.retryable, attempt, exc)
                if delay is None:
                    raise APIConnectionError(f"{call.method} {call.path}: {exc!r}",
                                             request_id) from exc
            else:
                delay = self.config.retry.after_response(call.retryable, attempt, response)
                if delay is None:
                    return finish(call, response, request_id)
                response.close()
            self._sleep(delay)
            attempt += 1

    def _paginate(self, path: str, params: dict[str, Any],
                  item: Callable[[dict[str, Any]], Any]) -> SyncPager[Any]:
        return SyncPager(lambda cursor: self._execute(
            self._page_call(path, params, cursor, item)))

    def _send_chunks(self, call_for: Callable[[bytes], Call[Any]], source: Any,
                     chunk_bytes: int, chunk_records: int) -> StreamResult:
        result = StreamResult()
        for chunk in chunks(source, chunk_bytes, chunk_records):
            result.message_ids.extend(_accepted_ids(self._execute(call_for(chunk))))
            result.requests += 1
        result.count = len(result.message_ids)
        return result

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IntegrationPlatform:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncIntegrationPlatform(BaseClient):
    """The asyncio client: the same resources and arguments; every call is awaited, and
    ``list``/``dlq.iter`` return pagers for ``async for``."""

    def __init__(self, api_key: Optional[str] = None, tenant_id: Optional[str] = None,
                 base_url: Optional[str] = None, *, timeout: Timeout = None,
                 max_retries: int = 3, http_client: Optional[httpx.AsyncClient] = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        super().__init__(Config.resolve(api_key, tenant_id, base_url, timeout, max_retries))
        self._http = http_client or httpx.AsyncClient()
        self._sleep = sleep

    async def _execute(self, call: Call[T]) -> T:
        request_id = new_request_id()
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    **request_arguments(self.config, call, request_id))
            except httpx.TransportError as exc:
                delay = self.config.retry.after_error(call.retryable, attempt, exc)
                if delay is None:
                    raise APIConnectionError(f"{call.method} {call.path}: {exc!r}",
                                             request_id) from exc
            else:
                delay = self.config.retry.after_response(call.retryable, attempt, response)
                if delay is None:
                    return finish(call, response, request_id)
                await response.aclose()
            await self._sleep(delay)
            attempt += 1

    def _paginate(self, path: str, params: dict[str, Any],
                  item: Callable[[dict[str, Any]], Any]) -> AsyncPager[Any]:
        return AsyncPager(lambda cursor: self._execute(
            self._page_call(path, params, cursor, item)))

    async def _send_chunks(self, call_for: Callable[[bytes], Call[Any]], source: Any,
                           chunk_bytes: int, chunk_records: int) -> StreamResult:
        result = StreamResult()
        async for chunk in async_chunks(source, chunk_bytes, chunk_records):
            result.message_ids.extend(_accepted_ids(await self._execute(call_for(chunk))))
            result.requests += 1
        result.count = len(result.message_ids)
        return result

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncIntegrationPlatform:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
