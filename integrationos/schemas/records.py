"""CSV and fixed-width payloads decoded to JSON records, typed by a JSON Schema.

The schema describes one record (an object). Each property's ``type`` (``integer``,
``number``, ``boolean`` or ``string``, the first such one if ``type`` is a list) types its
column; an empty field of a typed column is ``null`` (declare ``["integer", "null"]`` where
a value may be missing); columns the schema does not declare stay strings as read.

* CSV: a header row names the columns; ``x-csv: {"delimiter", "quote", "encoding"}`` on the
  schema overrides ``,``, ``"`` and UTF-8 (a ``charset`` on the content type wins).
* Fixed width: ``x-fixedWidth: [{"name", "start", "length"}]`` on the schema, ``start``
  counted from 1 in characters; one record per line; values are trimmed of padding.

Every problem names its row (the line it starts on) and column, and carries a JSON pointer
into the decoded list (``/0/qty``), like a schema violation of the records would.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from typing import Any

MAX_ROWS = 100_000

Violation = dict[str, Any]
Records = list[dict[str, Any]]

_TYPES = ("integer", "number", "boolean", "string")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Field:
    name: str
    start: int
    length: int


def _column_type(property_schema: Any) -> str | None:
    declared = property_schema.get("type") if isinstance(property_schema, dict) else None
    names = declared if isinstance(declared, list) else [declared]
    return next((name for name in names if name in _TYPES), None)


def column_types(schema: dict[str, Any] | None) -> dict[str, str]:
    """Column name to its JSON type, for the properties that declare one we can type."""
    properties = (schema or {}).get("properties")
    if not isinstance(properties, dict):
        return {}
    found = {name: _column_type(sub) for name, sub in properties.items()}
    return {name: type_ for name, type_ in found.items() if type_ is not None}


def typed(text: str, type_: str | None) -> Any:
    """The JSON value of one field; ``ValueError`` naming the expected type if it is not one."""
    if type_ is None:
        return text
    stripped = text.strip()
    if not stripped:
        return None
    if type_ == "integer" and _INTEGER.fullmatch(stripped):
        return int(stripped)
    if type_ == "number" and _NUMBER.fullmatch(stripped):
        return int(stripped) if _INTEGER.fullmatch(stripped) else float(stripped)
    if type_ == "boolean" and stripped.lower() in _BOOLEANS:
        return _BOOLEANS[stripped.lower()]
    if type_ == "string":
        return text
    article = "an" if type_ == "integer" else "a"
    raise ValueError(f"{stripped[:40]!r} is not {article} {type_}")


def _problem(row: int, column: str | None, message: str, index: int | None = None
             ) -> Violation:
    pointer = "/" if index is None else f"/{index}" + ("" if column is None else f"/{column}")
    where = f"row {row}" + ("" if column is None else f", column {column!r}")
    return {"pointer": pointer, "row": row, "column": column, "message": f"{where}: {message}"}


def _text(data: bytes, encoding: str) -> tuple[str | None, list[Violation]]:
    try:
        codecs.lookup(encoding)
    except LookupError:
        return None, [_problem(1, None, f"unknown character encoding {encoding!r}")]
    try:
        return data.decode("utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding
                           ), []
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        return None, [_problem(row, None, f"not valid {encoding} (byte {exc.start})")]


def _record(header: list[str], fields: list[str], types: dict[str, str], row: int,
            index: int, problems: list[Violation]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, text in zip(header, fields, strict=False):
        try:
            record[name] = typed(text, types.get(name))
        except ValueError as exc:
            problems.append(_problem(row, name, str(exc), index))
            record[name] = text
    for name in header[len(fields):]:
        record[name] = None
    return record


def _csv_option_problems(options: Any) -> list[Violation]:
    if not isinstance(options, dict) or not set(options) <= {"delimiter", "quote", "encoding"}:
        return [{"pointer": "/x-csv", "message": "must be an object with any of delimiter, "
                 "quote, encoding"}]
    problems = [
        {"pointer": f"/x-csv/{key}", "message": "must be one character, not a line break"}
        for key in ("delimiter", "quote")
        if key in options and not (isinstance(options[key], str) and len(options[key]) == 1
                                   and options[key] not in "\r\n")
    ]
    encoding = options.get("encoding", "utf-8")
    try:
        codecs.lookup(encoding if isinstance(encoding, str) else "")
    except LookupError:
        problems.append({"pointer": "/x-csv/encoding", "message": "not a known encoding"})
    return problems


def _header_problems(header: list[str]) -> list[Violation]:
    seen: set[str] = set()
    problems = []
    for number, name in enumerate(header, 1):
        if not name.strip():
            problems.append(_problem(1, None, f"header column {number} has no name"))
        elif name in seen:
            problems.append(_problem(1, name, "the header names this column twice"))
        seen.add(name)
    return problems


def decode_csv(data: bytes, schema: dict[str, Any] | None, charset: str | None = None
               ) -> tuple[Records, list[Violation]]:
    """One record per data row, keyed by the header row."""
    given = (schema or {}).get("x-csv", {})
    bad = _csv_option_problems(given)
    if bad:
        return [], [_problem(1, None, f"the schema's {p['pointer']} {p['message']}")
                    for p in bad]
    options = {"delimiter": ",", "quote": '"', "encoding": "utf-8"} | given
    text, problems = _text(data, charset or options["encoding"])
    if text is None:
        return [], problems
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=options["delimiter"],
                        quotechar=options["quote"], strict=True)
    types, records, header = column_types(schema), [], None
    row = 1
    try:
        for fields in reader:
            if fields and header is None:
                header = fields
                problems += _header_problems(header)
            elif fields:
                if len(records) == MAX_ROWS:
                    problems.append(_problem(row, None, f"more than {MAX_ROWS} rows"))
                    break
                if len(fields) != len(header):
                    problems.append(_problem(row, None, f"{len(fields)} fields, the header has "
                                             f"{len(header)}", len(records)))
                records.append(_record(header, fields, types, row, len(records), problems))
            row = reader.line_num + 1
    except csv.Error as exc:
        return records, [*problems, _problem(row, None, f"malformed CSV: {exc}")]
    if header is None:
        problems.append(_problem(1, None, "the CSV payload is empty; it needs a header row"))
    return records, problems


def _field_problems(i: int, item: Any) -> list[Violation]:
    at = f"/x-fixedWidth/{i}"
    if not isinstance(item, dict) or set(item) != {"name", "start", "length"}:
        return [{"pointer": at, "message": "must be {name, start, length}"}]
    problems = []
    if not isinstance(item["name"], str) or not item["name"]:
        problems.append({"pointer": f"{at}/name", "message": "must be a non-empty string"})
    for key in ("start", "length"):
        value = item[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append({"pointer": f"{at}/{key}", "message": "must be an integer >= 1"})
    return problems


def _layout_problems(layout: Any) -> list[Violation]:
    if not isinstance(layout, list) or not layout:
        return [{"pointer": "/x-fixedWidth",
                 "message": "must be a non-empty array of {name, start, length}"}]
    problems = [p for i, item in enumerate(layout) for p in _field_problems(i, item)]
    if problems:
        return problems
    names = [item["name"] for item in layout]
    problems = [{"pointer": f"/x-fixedWidth/{i}/name", "message": "names a field twice"}
                for i, name in enumerate(names) if name in names[:i]]
    reach, widest = 0, 0
    for start, end, i in sorted((item["start"], item["start"] + item["length"], i)
                                for i, item in enumerate(layout)):
        if start < reach:
            problems.append({"pointer": f"/x-fixedWidth/{i}",
                             "message": f"overlaps field {widest}"})
        if end > reach:
            reach, widest = end, i
    return problems


def definition_problems(schema: dict[str, Any]) -> list[Violation]:
    """What is wrong with the schema's ``x-csv`` options or ``x-fixedWidth`` layout, each
    with its pointer in the schema; checked when a schema is registered."""
    problems = []
    if "x-csv" in schema:
        problems += _csv_option_problems(schema["x-csv"])
    if "x-fixedWidth" in schema:
        problems += _layout_problems(schema["x-fixedWidth"])
    return problems


def fixed_width_layout(schema: dict[str, Any] | None) -> list[Field] | None:
    """The schema's field layout, or None if it has none (or a broken one)."""
    layout = (schema or {}).get("x-fixedWidth")
    if layout is None or _layout_problems(layout):
        return None
    return [Field(item["name"], item["start"], item["length"]) for item in layout]


def decode_fixed_width(data: bytes, schema: dict[str, Any] | None, charset: str | None = None
                       ) -> tuple[Records, list[Violation]]:
    """One record per non-blank line, cut by the schema's ``x-fixedWidth`` layout.

    A line shorter than the layout is read as if padded with spaces (editors trim them);
    anything but spaces past the layout's last column is a problem."""
    layout = fixed_width_layout(schema)
    if layout is None:
        return [], [_problem(1, None, "a fixed-width payload needs a sourceSchema with a valid "
                             "x-fixedWidth layout")]
    text, problems = _text(data, charset or "utf-8")
    if text is None:
        return [], problems
    types, records = column_types(schema), []
    width = max(f.start - 1 + f.length for f in layout)
    for row, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if len(records) == MAX_ROWS:
            problems.append(_problem(row, None, f"more than {MAX_ROWS} rows"))
            break
        if line[width:].strip():
            problems.append(_problem(row, None, f"characters past column {width}, the end of "
                                     "the layout", len(records)))
        fields = [line[f.start - 1: f.start - 1 + f.length].strip() for f in layout]
        records.append(_record([f.name for f in layout], fields, types, row, len(records),
                               problems))
    return records, problems
