"""``/v1/lookups``: the tables behind ``$lookup(table, key)``.

A STATIC table's rows travel in one ``lookup.rows_replaced`` event, so an upload is bounded
(``MAX_ROWS`` keys, ``MAX_ROWS_BYTES`` as JSON) to fit a log record; each upload is a new
rows version and older versions stay readable. HTTP and DB tables are definitions only: the
config is checked against its type here (connector exists and is of the right type, the URL
template has ``{key}``, the query binds ``:key``) so a typo is a 422 now, not a failed message.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from typing import Any

from sqlalchemy import Row, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrationos.api.commands import commit
from integrationos.api.context import Platform, new_id, platform, tenant
from integrationos.api.db import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ensure_unique_name,
    fetch_all,
    first,
    get_live,
    listing,
    live,
    page,
    page_request,
)
from integrationos.api.errors import ApiError, not_found
from integrationos.api.routing import resource
from integrationos.api.schemas import LOOKUP_CREATE, LOOKUP_UPDATE
from integrationos.api.serializers import iso
from integrationos.api.validation import check, parse_body, read_body, read_json, violations
from integrationos.engine.lookups import CONFIG_SPECS, CONNECTOR_TYPES, config_problems
from integrationos.store.tables import connectors, lookup_rows, lookups
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

MAX_ROWS = 50_000
MAX_ROWS_BYTES = 4 * 1024 * 1024
MAX_KEY_CHARS = 400
_MAX_DETAILS = 20
CSV_TYPES = frozenset({"text/csv", "application/csv"})


def lookup_json(row: Row) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "type": row.lookup_type,
        "config": json.loads(row.config_json), "rowsVersion": row.rows_version,
        "version": row.version, "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
    }


def _invalid(message: str, details: list[dict[str, Any]]) -> ApiError:
    return ApiError(422, "VALIDATION_FAILED", message, details[:_MAX_DETAILS])


async def _check_config(p: Platform, tenant_id: str, kind: str, config: dict[str, Any]) -> None:
    """The config's own spec, then what only the tenant's connectors can tell."""
    found = [{"field": "/config" + v["field"].rstrip("/"), "message": v["message"]}
             for v in violations(CONFIG_SPECS[kind], config)]
    found += config_problems(kind, config) if not found else []
    if found:
        raise _invalid(f"invalid {kind} lookup config", found)
    if kind == "STATIC":
        return
    wanted = CONNECTOR_TYPES[kind]
    row = await first(p.engine, live(connectors, tenant_id,
                                     connectors.c.id == config["connectorId"]))
    field, problem = "/config/connectorId", None
    if row is None:
        problem = "no connector with this id"
    elif row.connector_type != wanted:
        problem = f"must be a {wanted} connector, not {row.connector_type}"
    elif kind == "HTTP" and config["urlTemplate"].startswith("/") and \
            not json.loads(row.config_json).get("url"):
        field, problem = "/config/urlTemplate", "is relative, but the connector has no url"
    if problem:
        raise _invalid(f"invalid {kind} lookup config", [{"field": field, "message": problem}])


def checked_rows(rows: dict[str, Any], where: str = "/rows") -> str:
    """The rows as the event's JSON text, within the limits; else 413 or 422."""
    if len(rows) > MAX_ROWS:
        raise _invalid(f"at most {MAX_ROWS} rows per upload",
                       [{"field": where, "message": f"has {len(rows)} keys"}])
    bad = [key for key in rows if not 1 <= len(key) <= MAX_KEY_CHARS]
    if bad:
        raise _invalid("keys must have 1 to 400 characters", [
            {"field": where, "message": f"key {key[:40]!r}... has {len(key)} characters"}
            for key in bad])
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > MAX_ROWS_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the rows take {len(text.encode())} bytes "
                       f"as JSON; one upload holds at most {MAX_ROWS_BYTES}")
    return text


def csv_rows(raw: bytes) -> dict[str, Any]:
    """``key,value`` rows, or ``key,<col>,...`` rows whose value is an object of the columns.

    Structure faults (encoding, header, cell counts) are 400 ``MALFORMED_CSV``; a repeated
    key is a 422 naming both lines.
    """
    try:
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _malformed(f"not UTF-8 CSV: {str(exc)[:100]}") from None
    if not lines:
        raise _malformed("empty: send a header row key,value or key,<column>,...")
    header = [name.strip() for name in lines[0]]
    columns = header[1:]
    if header[0].lower() != "key" or not columns:
        raise _malformed("the header row must start with key and name at least one more "
                         "column (key,value or key,<column>,...)")
    if len(set(columns)) != len(columns) or "" in columns:
        raise _malformed("header columns must be named and unique")
    rows: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for number, cells in enumerate(lines[1:], start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise _malformed(f"line {number} has {len(cells)} cells; the header has "
                             f"{len(header)}")
        key = cells[0]
        if key in first_line:
            raise _invalid("keys must be unique", [{
                "field": f"line {number}",
                "message": f"key {key[:40]!r} is also on line {first_line[key]}"}])
        first_line[key] = number
        rows[key] = cells[1] if columns == ["value"] else dict(zip(columns, cells[1:],
                                                                   strict=True))
    return rows


def _malformed(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_CSV", f"the CSV body is unusable: {message}")


async def _uploaded_rows(request: Request) -> dict[str, Any]:
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media.lower() in CSV_TYPES:
        return csv_rows(await read_body(request, MAX_ROWS_BYTES))
    if media.lower() != "application/json":
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                       f"send rows as application/json or text/csv, not {media[:60]}")
    rows = await read_json(request, MAX_ROWS_BYTES)
    if not isinstance(rows, dict):
        raise _invalid("the rows must be a JSON object key -> value",
                       [{"field": "/", "message": "must be of type object"}])
    return rows


def _state(lookup_id: str, name: str, kind: str, config: dict[str, Any], version: int
           ) -> dict[str, Any]:
    return {"id": lookup_id, "name": name, "lookupType": kind,
            "configJson": json.dumps(config, ensure_ascii=False), "version": version}


def _rows_event(tenant_id: str, lookup_id: str, version: int, rows_json: str) -> Event:
    return Event(t.LOOKUP_ROWS_REPLACED, tenant_id, lookup_id,
                 {"id": lookup_id, "rowsVersion": version, "rowsJson": rows_json})


async def _live_lookup(p: Platform, tenant_id: str, lookup_id: str) -> Row:
    return await get_live(p.engine, lookups, "lookup", tenant_id, lookup_id)


async def _respond(p: Platform, tenant_id: str, lookup_id: str, status: int = 200
                   ) -> JSONResponse:
    return JSONResponse(lookup_json(await _live_lookup(p, tenant_id, lookup_id)),
                        status_code=status)


def _static_only(row: Row) -> None:
    if row.lookup_type != "STATIC":
        raise ApiError(409, "LOOKUP_NOT_STATIC",
                       f"lookup {row.id} is {row.lookup_type}: only STATIC lookups have rows")


async def create_lookup(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    body = await read_json(request, MAX_ROWS_BYTES)
    check(LOOKUP_CREATE, body)
    kind, config = body["type"], body.get("config", {})
    rows_json = None
    if "rows" in body:
        if kind != "STATIC":
            raise _invalid("only STATIC lookups take rows",
                           [{"field": "/rows", "message": f"not allowed for {kind}"}])
        rows_json = checked_rows(body["rows"])
    lookup_id = new_id("lkp")
    async with p.write_lock(tenant_id):
        await ensure_unique_name(p.engine, lookups, "lookup", tenant_id, body["name"])
        await _check_config(p, tenant_id, kind, config)
        data = _state(lookup_id, body["name"], kind, config, 1)
        await commit(p, Event(t.LOOKUP_CREATED, tenant_id, lookup_id, data))
        if rows_json is not None:
            await commit(p, _rows_event(tenant_id, lookup_id, 1, rows_json))
    return await _respond(p, tenant_id, lookup_id, 201)


async def list_lookups(request: Request) -> Response:
    p, tenant_id = platform(request), tenant(request)
    rows, next_cursor = await page(p.engine, lookups, live(lookups, tenant_id),
                                   page_request(request))
    return JSONResponse(listing([lookup_json(r) for r in rows], next_cursor))


async def get_lookup(request: Request) -> Response:
    return await _respond(platform(request), tenant(request), request.path_params["id"])


async def update_lookup(request: Request) -> Response:
    p, tenant_id, lookup_id = platform(request), tenant(request), request.path_params["id"]
    body = await parse_body(request, LOOKUP_UPDATE)
    async with p.write_lock(tenant_id):
        row = await _live_lookup(p, tenant_id, lookup_id)
        name = body.get("name", row.name)
        config = body.get("config", json.loads(row.config_json))
        await ensure_unique_name(p.engine, lookups, "lookup", tenant_id, name, lookup_id)
        await _check_config(p, tenant_id, row.lookup_type, config)
        data = _state(lookup_id, name, row.lookup_type, config, row.version + 1)
        await commit(p, Event(t.LOOKUP_UPDATED, tenant_id, lookup_id, data))
    return await _respond(p, tenant_id, lookup_id)


async def delete_lookup(request: Request) -> Response:
    p, tenant_id, lookup_id = platform(request), tenant(request), request.path_params["id"]
    async with p.write_lock(tenant_id):
        await _live_lookup(p, tenant_id, lookup_id)
        await commit(p, Event(t.LOOKUP_DELETED, tenant_id, lookup_id, {"id": lookup_id}))
    return Response(status_code=204)


async def replace_rows(request: Request) -> Response:
    p, tenant_id, lookup_id = platform(request), tenant(request), request.path_params["id"]
    _static_only(await _live_lookup(p, tenant_id, lookup_id))
    rows_json = checked_rows(await _uploaded_rows(request), "/")
    async with p.write_lock(tenant_id):
        row = await _live_lookup(p, tenant_id, lookup_id)
        version = (row.rows_version or 0) + 1
        await commit(p, _rows_event(tenant_id, lookup_id, version, rows_json))
    return await _respond(p, tenant_id, lookup_id)


def _rows_page_query(request: Request, current: int | None) -> tuple[int | None, int, str | None]:
    """(version, limit, after-key) from ``?version=&limit=&cursor=``."""
    params = request.query_params
    version = current
    if "version" in params:
        raw = params["version"]
        if not raw.isdigit() or current is None or not 1 <= int(raw) <= current:
            raise not_found("rows version", raw[:20])
        version = int(raw)
    raw_limit = params.get("limit", str(DEFAULT_PAGE_SIZE))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
        raise ApiError(400, "INVALID_QUERY", "invalid query parameter 'limit'", [{
            "field": "limit", "message": f"must be an integer from 1 to {MAX_PAGE_SIZE}"}])
    after = None
    if "cursor" in params:
        try:
            after = base64.b64decode(params["cursor"], altchars=b"-_", validate=True).decode()
        except (ValueError, binascii.Error):
            raise ApiError(400, "INVALID_QUERY", "invalid query parameter 'cursor'", [{
                "field": "cursor", "message": "not a cursor returned by this API"}]) from None
    return version, int(raw_limit), after


async def get_rows(request: Request) -> Response:
    """One page of a rows version (default: the current one), in key order."""
    p, tenant_id, lookup_id = platform(request), tenant(request), request.path_params["id"]
    row = await _live_lookup(p, tenant_id, lookup_id)
    _static_only(row)
    version, limit, after = _rows_page_query(request, row.rows_version)
    found: list[Any] = []
    if version is not None:
        query = select(lookup_rows.c.key, lookup_rows.c.value_json).where(
            lookup_rows.c.lookup_id == lookup_id, lookup_rows.c.rows_version == version)
        if after is not None:
            query = query.where(lookup_rows.c.key > after)
        found = list(await fetch_all(p.engine, query.order_by(lookup_rows.c.key)
                                     .limit(limit + 1)))
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        next_cursor = base64.urlsafe_b64encode(found[-1].key.encode()).decode()
    return JSONResponse({
        "lookupId": lookup_id, "rowsVersion": version,
        "data": [{"key": r.key, "value": json.loads(r.value_json)} for r in found],
        "nextCursor": next_cursor,
    })


routes = [
    resource("/v1/lookups", GET=list_lookups, POST=create_lookup),
    resource("/v1/lookups/{id}", GET=get_lookup, PATCH=update_lookup, DELETE=delete_lookup),
    resource("/v1/lookups/{id}/rows", GET=get_rows, PUT=replace_rows),
]
