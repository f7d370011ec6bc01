"""The SOQL polling cursor of a Salesforce source: where it is, and the query for what's next.

Records are read in ``(SystemModstamp, Id)`` order and the cursor is that pair for the last
record read, so a page that ends inside a run of records stamped in the same second neither
skips nor repeats any: the next page asks for a later stamp, or the same stamp and a later
Id. Salesforce keeps ``SystemModstamp`` to the second and SOQL dateTime literals are written
to the second, so the comparison is exact.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<sobject>[A-Za-z][A-Za-z0-9_]*)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
# Clauses the connector appends itself; a user's copy would clash with them.
_OWN_CLAUSES = re.compile(r"\b(ORDER\s+BY|LIMIT|OFFSET|GROUP\s+BY|HAVING|FOR\s+UPDATE)\b",
                          re.IGNORECASE)
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"  # how the REST API returns dateTime values


@dataclass(frozen=True)
class Cursor:
    """The last record read: its ``SystemModstamp`` as Salesforce returned it, and its Id."""

    system_modstamp: str
    id: str

    def checkpoint(self) -> str:
        return json.dumps({"systemModstamp": self.system_modstamp, "id": self.id})

    @classmethod
    def from_checkpoint(cls, text: str) -> Cursor:
        """Raises ``ValueError`` for anything ``checkpoint`` did not write."""
        state = json.loads(text)
        if not (isinstance(state, dict) and isinstance(state.get("systemModstamp"), str)
                and isinstance(state.get("id"), str)):
            raise ValueError("not a Salesforce checkpoint")
        cursor = cls(state["systemModstamp"], state["id"])
        cursor.soql_stamp()
        return cursor

    def soql_stamp(self) -> str:
        """The stamp as a SOQL dateTime literal (UTC, to the second)."""
        stamp = datetime.strptime(self.system_modstamp, STAMP_FORMAT)
        return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PollQuery:
    """The configured ``SELECT ... FROM ... [WHERE ...]``, taken apart once."""

    sobject: str
    fields: tuple[str, ...]
    where: str | None

    @classmethod
    def parse(cls, soql: str) -> PollQuery:
        """Raises ``ValueError`` naming what is wrong with the configured query."""
        match = _SOQL.match(soql)
        if match is None:
            raise ValueError("soql must read SELECT <fields> FROM <object> [WHERE <condition>]")
        where = match["where"]
        if where and (clause := _OWN_CLAUSES.search(where)):
            raise ValueError(f"soql must not contain {clause[0].upper()}: the connector "
                             "orders by SystemModstamp, Id and sets the LIMIT itself")
        fields = [f.strip() for f in match["fields"].split(",")]
        if not all(_FIELD.match(f) for f in fields):
            raise ValueError("soql must select plain field names (no subqueries or functions)")
        known = {f.lower() for f in fields}
        fields += [f for f in ("Id", "SystemModstamp") if f.lower() not in known]
        return cls(match["sobject"], tuple(fields), where)

    def page(self, after: Cursor | None, limit: int) -> str:
        """The query for up to ``limit`` records after ``after`` (None: from the start)."""
        conditions = [f"({self.where})"] if self.where else []
        if after is not None:
            stamp, last_id = after.soql_stamp(), _quote(after.id)
            conditions.append(f"(SystemModstamp > {stamp} OR "
                              f"(SystemModstamp = {stamp} AND Id > {last_id}))")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return (f"SELECT {', '.join(self.fields)} FROM {self.sobject}{where} "
                f"ORDER BY SystemModstamp ASC, Id ASC LIMIT {limit}")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
