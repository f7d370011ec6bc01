"""Tenant-scoped reads of the projection tables, run off the event loop.

SQLAlchemy's engine is synchronous; every query goes through Starlette's thread pool so a
slow disk or a busy PostgreSQL never stalls other requests.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, Select, Table, and_, or_, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from integrationos.api.errors import ApiError, not_found

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _first(engine: Engine, statement: Select) -> Row | None:
    with engine.connect() as conn:
        return conn.execute(statement).first()


def _all(engine: Engine, statement: Select) -> Sequence[Row]:
    with engine.connect() as conn:
        return conn.execute(statement).all()


async def first(engine: Engine, statement: Select) -> Row | None:
    return await run_in_threadpool(_first, engine, statement)


async def fetch_all(engine: Engine, statement: Select) -> Sequence[Row]:
    return await run_in_threadpool(_all, engine, statement)


def live(table: Table, tenant: str, *where: ColumnElement[bool]) -> Select:
    """Rows of ``table`` that belong to ``tenant`` and are not deleted."""
    return select(table).where(table.c.tenant_id == tenant, table.c.deleted.is_(False), *where)


async def get_live(engine: Engine, table: Table, kind: str, tenant: str, row_id: str) -> Row:
    """The tenant's row or 404 ``NOT_FOUND`` (also for another tenant's id)."""
    row = await first(engine, live(table, tenant, table.c.id == row_id))
    if row is None:
        raise not_found(kind, row_id)
    return row


async def ensure_unique_name(engine: Engine, table: Table, kind: str, tenant: str, name: str,
                             own_id: str = "") -> None:
    """409 ``CONFLICT`` if another live row of the tenant (not ``own_id``) has ``name``."""
    clash = await first(engine, live(table, tenant, table.c.name == name, table.c.id != own_id))
    if clash is not None:
        raise ApiError(409, "CONFLICT", f"a {kind} named {name!r} already exists",
                       [{"field": "/name", "id": clash.id}])


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: tuple[int, str] | None


def _bad_query(field: str, message: str) -> ApiError:
    return ApiError(400, "INVALID_QUERY", f"invalid query parameter {field!r}",
                    [{"field": field, "message": message}])


def page_request(request: Request) -> PageRequest:
    """``?limit=`` (1..200, default 50) and the opaque ``?cursor=`` of the previous page."""
    raw_limit = request.query_params.get("limit", str(DEFAULT_PAGE_SIZE))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
        raise _bad_query("limit", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    cursor = request.query_params.get("cursor")
    return PageRequest(int(raw_limit), None if cursor is None else _decode_cursor(cursor))


def _encode_cursor(row: Row) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at}:{row.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created_at, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        return int(created_at), row_id
    except (ValueError, binascii.Error):
        raise _bad_query("cursor", "not a cursor returned by this API") from None


async def page(engine: Engine, table: Table, statement: Select, wanted: PageRequest
               ) -> tuple[Sequence[Row], str | None]:
    """Keyset pagination in creation order: stable while rows are added or deleted."""
    if wanted.after is not None:
        created_at, row_id = wanted.after
        statement = statement.where(or_(
            table.c.created_at > created_at,
            and_(table.c.created_at == created_at, table.c.id > row_id),
        ))
    statement = statement.order_by(table.c.created_at, table.c.id).limit(wanted.limit + 1)
    rows = await fetch_all(engine, statement)
    if len(rows) > wanted.limit:
        return rows[: wanted.limit], _encode_cursor(rows[wanted.limit - 1])
    return rows, None


def listing(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"data": items, "nextCursor": next_cursor}
