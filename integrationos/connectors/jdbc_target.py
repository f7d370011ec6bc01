"""Writing messages into a table: one JSON object is one row, a JSON array is a batch.

A message is written in one transaction, so a batch lands whole or not at all, and the
error strategy retries or dead-letters the message as a unit. With ``idempotencyColumn``
every row carries the message's idempotency key (``<key>/<index>`` for the rows of a
batch), which makes a re-delivered message harmless: an upsert keyed on it rewrites the same
row, and an insert that hits its unique index finds the rows already there.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, Executable, Table, insert, select

from integrationos.connectors.base import ConnectorError, OutboundMessage
from integrationos.connectors.jdbc_statements import check_identifier, upsert_row
from integrationos.connectors.jdbc_values import to_column

Mode = Literal["insert", "upsert"]


class UnknownColumns(Exception):
    """Rows name columns the (reflected) table lacks; the caller may reflect it again."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class TableWriter:
    """The target half of a JDBC connector."""

    def __init__(self, dialect: str, config: dict[str, Any]) -> None:
        self.dialect = dialect
        self.table_name: str = config["table"]
        self.mode: Mode = config.get("mode", "insert")
        self.idempotency_column: str | None = config.get("idempotencyColumn")
        self.keys: list[str] = list(config.get("keyColumns") or
                                    filter(None, [self.idempotency_column]))
        self.mapping: dict[str, str] | None = config.get("columns")

    def rows(self, message: OutboundMessage) -> list[dict[str, Any]]:
        """The message's payload as rows of column values (still JSON values)."""
        payload = message.payload
        items = payload if isinstance(payload, list) else [payload]
        rows = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise _bad_payload(f"expected a JSON object (or an array of objects), got "
                                   f"{type(item).__name__}")
            if self.mapping is not None:
                row = {column: item[field] for field, column in self.mapping.items()
                       if field in item}
            else:
                row = {check_identifier(field, "payload field"): value
                       for field, value in item.items()}
            if self.idempotency_column is not None:
                key = message.idempotency_key
                row[self.idempotency_column] = key if not isinstance(payload, list) \
                    else f"{key}/{index}"
            if not row:
                raise _bad_payload("a row has no column to write")
            missing = [k for k in self.keys if row.get(k) is None]
            if self.mode == "upsert" and missing:
                raise _bad_payload(f"a row lacks the key column(s) {', '.join(missing)}")
            rows.append(row)
        return rows

    def bind(self, table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows as bind parameters typed for ``table``'s columns."""
        unknown = sorted({name for row in rows for name in row if name not in table.c})
        if unknown:
            raise UnknownColumns(unknown)
        bound = []
        for row in rows:
            values = {}
            for name, value in row.items():
                try:
                    values[name] = to_column(value, table.c[name].type)
                except ValueError as exc:
                    raise ConnectorError("DB_BAD_VALUE", f"column {name}: {exc}",
                                         retryable=False) from None
            bound.append(values)
        return bound

    def execute(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Every row, in order, inside the caller's transaction (a later row of a batch
        wins over an earlier one with the same key, on every dialect)."""
        statements: dict[tuple[str, ...], Executable] = {}
        for row in rows:
            columns = tuple(row)
            if columns not in statements:
                statements[columns] = self._statement(table, list(columns))
            conn.execute(statements[columns], row)

    def already_written(self, conn: Connection, table: Table, rows: list[dict[str, Any]]
                        ) -> bool:
        """Whether an insert that broke a constraint was a re-delivery: the message's first
        row is in the table under its idempotency key (its transaction wrote them all)."""
        if self.idempotency_column is None or not rows:
            return False
        column = table.c[self.idempotency_column]
        found = conn.execute(select(column).where(
            column == rows[0][self.idempotency_column]).limit(1)).first()
        return found is not None

    def _statement(self, table: Table, columns: list[str]) -> Executable:
        if self.mode == "upsert":
            return upsert_row(self.dialect, table, columns, self.keys)
        return insert(table)


def _bad_payload(reason: str) -> ConnectorError:
    return ConnectorError("DB_BAD_PAYLOAD", reason, retryable=False)
