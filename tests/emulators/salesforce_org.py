"""The data side of the Salesforce emulator: an in-memory org with a few sObject types.

Records get 18-character Ids with the type's key prefix and audit stamps (``CreatedDate``,
``LastModifiedDate``, ``SystemModstamp``) kept to the second, as Salesforce keeps them.
Saves check what Salesforce checks and fail with its error codes and messages (REST API
Developer Guide, "Status Codes and Error Responses"): unknown fields (``INVALID_FIELD``),
required fields (``REQUIRED_FIELD_MISSING``), unique fields (``DUPLICATE_VALUE``), unknown
records or external id fields (``NOT_FOUND``). ``query`` evaluates the SOQL subset the
connector sends: SELECT fields FROM object [WHERE comparisons joined by AND / OR, with
parentheses] [ORDER BY fields [ASC|DESC]] [LIMIT n].
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

AUDIT_FIELDS = ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp")
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.000+0000"


class ApiError(Exception):
    """An error Salesforce answers as ``[{"message", "errorCode", "fields"}]``."""

    def __init__(self, status: int, code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "errorCode": self.code, "fields": list(self.fields)}]

    def save_error(self) -> dict[str, Any]:
        """The same error as an item of a SaveResult ``errors`` list."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}


@dataclass(frozen=True)
class SObjectType:
    name: str
    key_prefix: str
    fields: frozenset[str]  # writable fields
    required: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()  # unique fields; all of them usable as external ids

    def readable(self) -> frozenset[str]:
        return self.fields | set(AUDIT_FIELDS)


DEFAULT_TYPES = (
    SObjectType("Contact", "003", frozenset({"FirstName", "LastName", "Email", "Phone",
                                             "External_Id__c"}),
                required=("LastName",), unique=("External_Id__c",)),
    SObjectType("Account", "001", frozenset({"Name", "Industry", "External_Id__c"}),
                required=("Name",), unique=("External_Id__c",)),
)


class Org:
    """Records by type, guarded by one lock: the server thread writes, tests read."""

    def __init__(self, types: tuple[SObjectType, ...] = DEFAULT_TYPES) -> None:
        self.types = {t.name: t for t in types}
        self.records: dict[str, dict[str, dict[str, Any]]] = {t.name: {} for t in types}
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.lock = threading.RLock()
        self._ids = itertools.count(1)

    def type(self, name: str) -> SObjectType:
        if name not in self.types:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return self.types[name]

    def create(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        sobject = self.type(name)
        with self.lock:
            record = {f: None for f in sobject.fields} | self._checked(sobject, fields)
            self._check_required(sobject, record)
            self._check_unique(sobject, record, None)
            stamp = self._stamp()
            record |= {"Id": f"{sobject.key_prefix}{next(self._ids):012d}AAA",
                       "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp}
            self.records[name][record["Id"]] = record
            return record

    def update(self, name: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        sobject = self.type(name)
        with self.lock:
            current = self.records[name].get(record_id)
            if current is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            record = current | self._checked(sobject, fields)
            self._check_required(sobject, record)
            self._check_unique(sobject, record, record_id)
            stamp = self._stamp()
            record |= {"LastModifiedDate": stamp, "SystemModstamp": stamp}
            self.records[name][record_id] = record
            return record

    def upsert(self, name: str, field: str, value: Any,
               fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """``(record, created)``: update the record whose ``field`` is ``value``, or create."""
        sobject = self.type(name)
        if field not in sobject.unique:
            raise ApiError(404, "NOT_FOUND", "Provided external ID field does not exist or is "
                           f"not accessible: {field}")
        with self.lock:
            found = next((r for r in self.records[name].values() if r.get(field) == value), None)
            if found is None:
                return self.create(name, {**fields, field: value}), True
            return self.update(name, found["Id"], {**fields, field: value}), False

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        with self.lock:
            return copy.deepcopy(self.records)

    def roll_back(self, snapshot: dict[str, dict[str, dict[str, Any]]]) -> None:
        with self.lock:
            self.records = snapshot

    def query(self, soql: str) -> tuple[str, list[dict[str, Any]]]:
        """``(sObject type, rows with the selected fields)``."""
        parsed = _Query.parse(soql)
        if parsed.sobject not in self.types:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{parsed.sobject}' is not "
                           "supported.")
        sobject = self.types[parsed.sobject]
        for name in parsed.referenced():
            if name not in sobject.readable():
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on entity "
                               f"'{sobject.name}'.")
        with self.lock:
            rows = [r for r in self.records[sobject.name].values() if parsed.matches(r)]
        for name, descending in reversed(parsed.order):
            rows.sort(key=lambda r, n=name: _sortable(r.get(n)), reverse=descending)
        return sobject.name, [{f: row.get(f) for f in parsed.fields} for row in rows[:parsed.limit]]

    def _checked(self, sobject: SObjectType, fields: dict[str, Any]) -> dict[str, Any]:
        for name in fields:
            if name not in sobject.fields:
                raise ApiError(400, "INVALID_FIELD",
                               f"No such column '{name}' on sobject of type {sobject.name}")
        return dict(fields)

    def _check_required(self, sobject: SObjectType, record: dict[str, Any]) -> None:
        missing = tuple(f for f in sobject.required if record.get(f) in (None, ""))
        if missing:
            raise ApiError(400, "REQUIRED_FIELD_MISSING",
                           f"Required fields are missing: [{', '.join(missing)}]", missing)

    def _check_unique(self, sobject: SObjectType, record: dict[str, Any],
                      own_id: str | None) -> None:
        for field in sobject.unique:
            value = record.get(field)
            clash = value is not None and next(
                (r["Id"] for r in self.records[sobject.name].values()
                 if r.get(field) == value and r["Id"] != own_id), None)
            if clash:
                raise ApiError(400, "DUPLICATE_VALUE", f"duplicate value found: {field} "
                               f"duplicates value on record with id: {clash}")

    def _stamp(self) -> str:
        return self.clock().astimezone(UTC).strftime(STAMP_FORMAT)


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, _comparable(value))


def _comparable(value: Any) -> Any:
    """Stamps compare as instants; everything else as itself."""
    if isinstance(value, str) and _DATETIME.fullmatch(value):
        return datetime.fromisoformat(value.replace("+0000", "+00:00"))
    return value


# --- the SOQL subset -------------------------------------------------------------------

_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})")
_TOKEN = re.compile(
    rf"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<datetime>{_DATETIME.pattern})|"
    r"(?P<number>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|=|<|>)|(?P<punct>[(),])|"
    r"(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
}
Condition = Callable[[dict[str, Any]], bool]


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token at: {text[position:][:20]}")
        kind = match.lastgroup or ""
        yield kind, match[kind]
        position = match.end()


@dataclass
class _Query:
    sobject: str
    fields: list[str]
    condition: Condition
    order: list[tuple[str, bool]]
    limit: int | None
    compared: list[str]

    @classmethod
    def parse(cls, soql: str) -> _Query:
        return _Parser(list(_tokens(soql))).query()

    def referenced(self) -> list[str]:
        return self.fields + self.compared + [name for name, _ in self.order]

    def matches(self, record: dict[str, Any]) -> bool:
        return self.condition(record)


class _Parser:
    """Recursive descent over the tokens; keywords are case-insensitive, as in SOQL."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0
        self.compared: list[str] = []

    def query(self) -> _Query:
        self.keyword("SELECT")
        fields = [self.word()]
        while self.accept("punct", ","):
            fields.append(self.word())
        self.keyword("FROM")
        sobject = self.word()
        condition: Condition = lambda _record: True  # noqa: E731
        if self.accept_keyword("WHERE"):
            condition = self.disjunction()
        order: list[tuple[str, bool]] = []
        if self.accept_keyword("ORDER"):
            self.keyword("BY")
            order.append(self.ordering())
            while self.accept("punct", ","):
                order.append(self.ordering())
        limit = int(self.take("number")) if self.accept_keyword("LIMIT") else None
        if self.at != len(self.tokens):
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected '{self.tokens[self.at][1]}'")
        return _Query(sobject, fields, condition, order, limit, self.compared)

    def disjunction(self) -> Condition:
        terms = [self.conjunction()]
        while self.accept_keyword("OR"):
            terms.append(self.conjunction())
        return lambda record: any(term(record) for term in terms)

    def conjunction(self) -> Condition:
        factors = [self.factor()]
        while self.accept_keyword("AND"):
            factors.append(self.factor())
        return lambda record: all(factor(record) for factor in factors)

    def factor(self) -> Condition:
        if self.accept("punct", "("):
            inner = self.disjunction()
            self.take("punct", ")")
            return inner
        field = self.word()
        self.compared.append(field)
        compare = _OPS[self.take("op")]
        value = self.literal()

        def condition(record: dict[str, Any]) -> bool:
            actual = record.get(field)
            if actual is None or value is None:
                return compare(actual, value) if compare in (_OPS["="], _OPS["!="]) else False
            return compare(_comparable(actual), value)

        return condition

    def literal(self) -> Any:
        kind, text = self.tokens[self.at]
        self.at += 1
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind in ("datetime", "number"):
            return _comparable(text) if kind == "datetime" else float(text)
        if kind == "word" and text.upper() in ("TRUE", "FALSE", "NULL"):
            return {"TRUE": True, "FALSE": False, "NULL": None}[text.upper()]
        raise ApiError(400, "MALFORMED_QUERY", f"unexpected '{text}'")

    def ordering(self) -> tuple[str, bool]:
        name = self.word()
        if self.accept_keyword("DESC"):
            return name, True
        self.accept_keyword("ASC")
        return name, False

    def word(self) -> str:
        return self.take("word")

    def keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            raise ApiError(400, "MALFORMED_QUERY", f"expected {word}")

    def accept_keyword(self, word: str) -> bool:
        if self.at < len(self.tokens) and self.tokens[self.at][0] == "word" \
                and self.tokens[self.at][1].upper() == word:
            self.at += 1
            return True
        return False

    def accept(self, kind: str, text: str) -> bool:
        if self.at < len(self.tokens) and self.tokens[self.at] == (kind, text):
            self.at += 1
            return True
        return False

    def take(self, kind: str, text: str | None = None) -> str:
        if self.at >= len(self.tokens) or self.tokens[self.at][0] != kind or \
                (text is not None and self.tokens[self.at][1] != text):
            raise ApiError(400, "MALFORMED_QUERY", f"expected {text or kind}")
        self.at += 1
        return self.tokens[self.at - 1][1]
