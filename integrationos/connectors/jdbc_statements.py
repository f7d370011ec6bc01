"""The SQL the JDBC source and target run, built by SQLAlchemy, never by joining strings.

Table and column names come from config and payloads: each is checked against a strict
pattern and then quoted by the dialect's own identifier preparer; every value is a bound
parameter. Upserts use each dialect's native statement: ``ON CONFLICT`` (PostgreSQL,
SQLite), ``ON DUPLICATE KEY UPDATE`` (MySQL/MariaDB), and ``MERGE`` (SQL Server, Oracle),
the last one a small compiled construct since SQLAlchemy has none for it.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    Table,
    and_,
    bindparam,
    or_,
    select,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from integrationos.connectors.base import ConnectorError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain identifier; a permanent error otherwise (a payload field
    like ``a;drop`` must never reach a statement, even quoted)."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ConnectorError("DB_BAD_IDENTIFIER", f"{what} {name!r} is not a plain identifier "
                             f"(letters, digits, _; at most 63)", retryable=False)
    return name


def after_cursor(table: Table, cursor_column: str, tiebreak_column: str | None,
                 cursor: Any, tiebreak: Any, limit: int) -> Select[Any]:
    """The next ``limit`` rows after (``cursor``, ``tiebreak``) in cursor order; rows whose
    cursor is NULL are never read."""
    cursor_col = table.c[cursor_column]
    order: list[ColumnElement[Any]] = [cursor_col]
    query = select(table).where(cursor_col.is_not(None))
    if tiebreak_column is not None:
        order.append(table.c[tiebreak_column])
    if cursor is not None:
        if tiebreak_column is not None and tiebreak is not None:
            query = query.where(or_(cursor_col > cursor, and_(
                cursor_col == cursor, table.c[tiebreak_column] > tiebreak)))
        else:
            query = query.where(cursor_col > cursor)
    return query.order_by(*order).limit(limit)


def upsert_row(dialect: str, table: Table, columns: list[str], keys: list[str]) -> Executable:
    """Insert one row of ``columns``, or update the row that has the same ``keys``."""
    updated = [c for c in columns if c not in keys]
    if dialect in ("postgresql", "sqlite"):
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(table)
        if not updated:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        return stmt.on_conflict_do_update(index_elements=keys,
                                          set_={c: stmt.excluded[c] for c in updated})
    if dialect in ("mysql", "mariadb"):
        # MySQL matches on any unique key of the table: keys must be its (only) unique key.
        my = mysql.insert(table)
        return my.on_duplicate_key_update({c: my.inserted[c] for c in updated or keys[:1]})
    if dialect in ("mssql", "oracle"):
        return Merge(table, columns, keys)
    raise ValueError(f"no upsert for dialect {dialect}")


class Merge(Executable, ClauseElement):
    """``MERGE`` of one row (bound parameters named after its columns) into ``table``."""

    inherit_cache = False  # holds a table and lists: not cacheable as is, and cheap to build

    def __init__(self, table: Table, columns: list[str], keys: list[str]) -> None:
        self.table = table
        self.columns = columns
        self.keys = keys


def _merge_parts(element: Merge, compiler: SQLCompiler, **kw: Any) -> dict[str, str]:
    quote = compiler.preparer.quote
    names = [quote(c) for c in element.columns]
    binds = [compiler.process(bindparam(c, type_=element.table.c[c].type), **kw)
             for c in element.columns]
    updated = [quote(c) for c in element.columns if c not in element.keys]
    return {
        "table": compiler.preparer.format_table(element.table),
        "names": ", ".join(names),
        "binds": ", ".join(binds),
        "aliased": ", ".join(f"{b} AS {n}" for b, n in zip(binds, names, strict=True)),
        "on": " AND ".join(f"tgt.{quote(k)} = src.{quote(k)}" for k in element.keys),
        "matched": "WHEN MATCHED THEN UPDATE SET " + ", ".join(
            f"tgt.{n} = src.{n}" for n in updated) + " " if updated else "",
        "inserted": ", ".join(f"src.{n}" for n in names),
    }


@compiles(Merge, "mssql")
def _merge_mssql(element: Merge, compiler: SQLCompiler, **kw: Any) -> str:
    # HOLDLOCK: without it two concurrent MERGEs of a new key can both take the INSERT branch.
    p = _merge_parts(element, compiler, **kw)
    return (f"MERGE INTO {p['table']} WITH (HOLDLOCK) AS tgt "
            f"USING (VALUES ({p['binds']})) AS src ({p['names']}) ON {p['on']} "
            f"{p['matched']}WHEN NOT MATCHED THEN INSERT ({p['names']}) "
            f"VALUES ({p['inserted']});")


@compiles(Merge, "oracle")
def _merge_oracle(element: Merge, compiler: SQLCompiler, **kw: Any) -> str:
    p = _merge_parts(element, compiler, **kw)
    return (f"MERGE INTO {p['table']} tgt USING (SELECT {p['aliased']} FROM DUAL) src "
            f"ON ({p['on']}) {p['matched']}WHEN NOT MATCHED THEN INSERT ({p['names']}) "
            f"VALUES ({p['inserted']})")
