"""Incremental reading of a table (or a parameterised query) by a cursor column.

Rows are read in (cursor, tie-break) order strictly after the last committed position.
Each record carries the position after it as its checkpoint; the reader moves on only when
the engine commits records, i.e. once they are in Kafka and their checkpoint is stored, so
a failed forward or a crash re-reads rows and never skips them. A record's position is the
row version (cursor and tie-break values), so a re-read row keeps its message id while an
updated row (a new updated-at) is a new message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, text

from integrationos.connectors.base import ConnectorError, SourceRecord
from integrationos.connectors.jdbc_statements import after_cursor
from integrationos.connectors.jdbc_values import (
    decode_cursor,
    encode_cursor,
    position_text,
    to_column,
    to_json,
)


@dataclass(frozen=True)
class Position:
    cursor: Any
    tiebreak: Any = None


class CursorReader:
    """The source half of a JDBC connector: what to read next, and from where."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.query: str | None = config.get("query")
        self.cursor_column: str = config["cursorColumn"]
        self.tiebreak_column: str | None = config.get("tieBreakColumn")
        self.name: str = config["table"] if self.query is None else "query"
        self._initial = config.get("initialCursor")
        self._position: Position | None = None
        self._restore_error: str | None = None

    def restore(self, checkpoint: str | None) -> None:
        """Start after ``checkpoint``; an unreadable one stops the source (it is reported on
        every poll) rather than silently starting over."""
        self._position, self._restore_error = None, None
        if checkpoint is not None:
            try:
                self._position = _decode(checkpoint)
            except (ValueError, KeyError, TypeError) as exc:
                self._restore_error = f"unreadable checkpoint {checkpoint[:200]!r}: {exc}"

    def advance(self, records: list[SourceRecord]) -> None:
        """Move past ``records`` (called once they are durable)."""
        if records and records[-1].checkpoint is not None:
            self._position = _decode(records[-1].checkpoint)

    def read(self, conn: Connection, table: Table | None, limit: int) -> list[SourceRecord]:
        """Up to ``limit`` records after the current position (``table`` unless a query)."""
        if self._restore_error is not None:
            raise ConnectorError("DB_BAD_CHECKPOINT", self._restore_error, retryable=False)
        start = self._position or Position(self._initial)
        if self.query is not None:
            result = conn.execute(text(self.query), {
                "cursor": start.cursor, "tiebreak": start.tiebreak, "limit": limit})
            rows = list(result.mappings().fetchmany(limit))
        else:
            assert table is not None
            rows = self._table_rows(conn, table, start, limit)
        return [self._record(row) for row in self._whole_cursor_groups(rows, limit)]

    def _table_rows(self, conn: Connection, table: Table, start: Position, limit: int
                    ) -> list[RowMapping]:
        for column in filter(None, (self.cursor_column, self.tiebreak_column)):
            if column not in table.c:
                raise ConnectorError("DB_BAD_CONFIG", f"table {self.name} has no column "
                                     f"{column}", retryable=False)
        cursor = start.cursor
        if self._position is None and cursor is not None:  # initialCursor, as JSON
            try:
                cursor = to_column(cursor, table.c[self.cursor_column].type)
            except ValueError as exc:
                raise ConnectorError("DB_BAD_CONFIG", f"initialCursor: {exc}",
                                     retryable=False) from None
        return list(conn.execute(after_cursor(
            table, self.cursor_column, self.tiebreak_column, cursor, start.tiebreak, limit,
        )).mappings())

    def _whole_cursor_groups(self, rows: list[RowMapping], limit: int) -> list[RowMapping]:
        """Without a tie-break column, rows sharing the last cursor value of a full batch
        may go on in the next one, which reads strictly after that value: leave them all
        for the next batch so none is skipped."""
        if self.tiebreak_column is not None or len(rows) < limit:
            return rows
        last = self._cursor_of(rows[-1])
        kept = [row for row in rows if self._cursor_of(row) != last]
        if not kept:
            raise ConnectorError(
                "DB_CURSOR_NOT_UNIQUE", f"{limit} or more rows share the cursor value "
                f"{position_text(last)}: set tieBreakColumn (e.g. the primary key) or a larger "
                "batchSize", retryable=False)
        return kept

    def _cursor_of(self, row: RowMapping) -> Any:
        return _column(row, self.cursor_column, "cursorColumn")

    def _record(self, row: RowMapping) -> SourceRecord:
        cursor = self._cursor_of(row)
        if cursor is None:
            raise ConnectorError("DB_CURSOR_NULL", f"a row of {self.name} has a NULL "
                                 f"{self.cursor_column}: filter those out", retryable=False)
        values = [cursor]
        tiebreak = None
        if self.tiebreak_column is not None:
            tiebreak = _column(row, self.tiebreak_column, "tieBreakColumn")
            values.append(tiebreak)
        try:
            checkpoint = {"cursor": encode_cursor(cursor), "tiebreak": encode_cursor(tiebreak)}
        except ValueError as exc:
            raise ConnectorError("DB_BAD_CONFIG", f"cannot checkpoint {self.name}: {exc}",
                                 retryable=False) from None
        body = {str(name): to_json(value) for name, value in row.items()}
        return SourceRecord(
            key=position_text(values[-1]).encode(),
            value=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            position="/".join([self.name, *map(position_text, values)]),
            checkpoint=json.dumps(checkpoint, separators=(",", ":")),
        )


def _column(row: RowMapping, name: str, option: str) -> Any:
    try:
        return row[name]
    except KeyError:
        raise ConnectorError("DB_BAD_CONFIG", f"the query's rows have no column {name} "
                             f"({option})", retryable=False) from None


def _decode(checkpoint: str) -> Position:
    data = json.loads(checkpoint)
    return Position(decode_cursor(data["cursor"]), decode_cursor(data.get("tiebreak")))
