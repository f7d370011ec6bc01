"""The custom functions every JSONata expression can call, and the context they read.

``$lookup(table, key[, default])``, ``$uuid()``, ``$formatDate(value, pattern[, timezone])``,
``$parseDate(text, pattern[, timezone])`` and ``$env(name)`` are Python host functions
registered on every compiled expression. Two jsonatapy facts shape this module:

- A host function cannot see the evaluation it runs in, so the tenant's variables and
  lookup tables travel in a ``ContextVar`` that an ``Evaluation`` sets around one evaluation.
- jsonatapy reduces an exception raised by a host function to the text
  ``host function raised <Class>: <message>``: the code and whether a retry can help would be
  lost. So every failure is also kept on the current ``Evaluation``, for ``transform`` to
  raise with its code and retry class.

A host function also cannot return JSONata's *undefined* (``None`` becomes ``null``) nor call
the built-in it would replace. Expressions that name ``$lookup``, ``$formatDate``,
``$parseDate``, ``$pad`` or ``$eval`` therefore get a short JSONata prelude
(``with_prelude``): ``$lookup`` with a non-string first argument is the built-in itself, an
undefined date gives undefined, as JSONata's own functions do (so
``{"d": $formatDate(missing, "yyyy")}`` is ``{}``), and ``$pad`` refuses a width over
``MAX_PAD_WIDTH``: it is the one built-in whose cost an argument sets, and the time limit
cannot stop a built-in mid-call (``$pad("", 1e9)`` held the GIL for 10 s and took 2.9 GB).
"""

from __future__ import annotations

import enum
import re
import time
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo


class _Missing(enum.Enum):
    MISSING = "MISSING"


MISSING = _Missing.MISSING
"""What a lookup resolver returns for a key its table does not hold (``None`` is a value)."""
MAX_PAD_WIDTH = 1_000_000


class FunctionError(Exception):
    """A custom function's failure: a stable ``code``, and whether retrying can help."""

    def __init__(self, code: str, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class LookupFailed(FunctionError):
    """Raised by a lookup resolver that cannot answer.

    ``retryable`` when the answer may come later (the source is down or slow), not when the
    question is wrong (an unknown table): the pipeline retries only the former.
    """


@dataclass(frozen=True)
class EvaluationContext:
    """Who an evaluation runs for: ``$env`` reads ``variables``, ``$lookup`` asks ``lookup``.

    ``lookup(table, key)`` returns the value, ``MISSING`` for an unknown key, or raises
    ``LookupFailed``. It is called on the evaluating thread while jsonatapy holds the GIL and
    the time limit runs, so it must answer from memory, not wait on I/O.
    """

    tenant: str
    environment: str
    variables: Mapping[str, str] = field(default_factory=dict)
    lookup: Callable[[str, Any], Any] | None = None


@dataclass(frozen=True)
class HostFailure:
    """The failure a custom function raised, under the name the expression called it by."""

    function: str
    error: FunctionError


class Evaluation:
    """One evaluation in progress, current while inside ``with``: its context, the failure a
    host function raised, and the time spent waiting for lookups (which count against the
    time limit, though the expression is not what was slow).

    A class, not ``@contextmanager``: it is on every message's path, and µs count there.
    """

    __slots__ = ("_token", "context", "failure", "lookup_ns")

    def __init__(self, context: EvaluationContext | None) -> None:
        self.context = context
        self.failure: HostFailure | None = None
        self.lookup_ns = 0

    def __enter__(self) -> Evaluation:
        self._token = _current.set(self)
        return self

    def __exit__(self, *_: object) -> None:
        _current.reset(self._token)


_current: ContextVar[Evaluation | None] = ContextVar("ios_jsonata_evaluation", default=None)


def _argument(value: Any, position: int, kind: type | tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise FunctionError("T0410", f"argument {position} must be {what}, got {value!r}")
    return value


# --- $lookup, $env, $uuid -------------------------------------------------------------------


def _table_lookup(table: Any, key: Any, has_default: bool, default: Any) -> Any:
    evaluation = _current.get()
    context = evaluation.context if evaluation else None
    if evaluation is None or context is None or context.lookup is None:
        raise FunctionError("LOOKUP_UNAVAILABLE", "no lookup tables in this evaluation")
    started = time.perf_counter_ns()
    try:
        value = MISSING if key is None else context.lookup(table, key)
    except LookupFailed:
        raise
    except Exception as exc:  # a resolver bug: permanent, and named so it can be found
        raise LookupFailed("LOOKUP_FAILED", f"the resolver raised {type(exc).__name__}: {exc}",
                           retryable=False) from exc
    finally:
        evaluation.lookup_ns += time.perf_counter_ns() - started
    if value is not MISSING:
        return value
    if has_default:
        return default
    shown = "a null or undefined key" if key is None else f"no key {key!r}"
    raise FunctionError("LOOKUP_KEY_MISSING", f"table {table!r} has {shown}")


def _env(name: Any) -> str:
    _argument(name, 1, str, "a string")
    evaluation = _current.get()
    context = evaluation.context if evaluation else None
    variables = context.variables if context else {}
    if name not in variables:
        raise FunctionError("ENV_UNDEFINED", f"the variable {name!r} is not defined here")
    return variables[name]


def _uuid() -> str:
    return str(uuid.uuid4())


def _pad_too_wide(width: float) -> None:
    raise FunctionError(
        "STRING_TOO_LONG", f"a width of {width:,.0f} is over the limit of {MAX_PAD_WIDTH:,}")


# --- $formatDate, $parseDate ----------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PATTERN_PART = re.compile(r"'((?:[^']|'')*)'|([A-Za-z])\2*|[^A-Za-z']+")
_OFFSET = re.compile(r"([+-])(\d{2})(?::?(\d{2}))?")
# pattern letters -> (field, the text it parses)
_FIELDS = {
    "yyyy": ("year", r"\d{4}"), "yy": ("year2", r"\d{2}"),
    "MM": ("month", r"\d{2}"), "M": ("month", r"\d{1,2}"),
    "dd": ("day", r"\d{2}"), "d": ("day", r"\d{1,2}"),
    "HH": ("hour", r"\d{2}"), "mm": ("minute", r"\d{2}"), "ss": ("second", r"\d{2}"),
    "SSS": ("millisecond", r"\d{3}"),
    "XXX": ("offset", r"Z|[+-]\d{2}:\d{2}"), "XX": ("offset", r"Z|[+-]\d{4}"),
    "X": ("offset", r"Z|[+-]\d{2}(?:\d{2})?"), "Z": ("offset", r"[+-]\d{4}"),
}


@dataclass(frozen=True)
class _Pattern:
    parts: tuple[tuple[str, str], ...]  # ("field", letters) or ("text", literal)
    regex: re.Pattern[str]


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> _Pattern:
    """Split a Java/ICU-style pattern once; unknown letters are errors, not literal text."""
    parts: list[tuple[str, str]] = []
    regex = []
    position = 0
    while position < len(pattern):
        match = _PATTERN_PART.match(pattern, position)
        if match is None:
            raise FunctionError("DATE_PATTERN_INVALID", f"unterminated quote in {pattern!r}")
        position = match.end()
        quoted, letters = match.group(1), match.group(0)
        if letters in _FIELDS:
            parts.append(("field", letters))
            regex.append(f"(?P<g{len(parts)}>{_FIELDS[letters][1]})")
            continue
        if quoted is not None:  # 'text', where '' is a quote; '' alone is one too
            text = quoted.replace("''", "'") if quoted else "'"
        elif letters[0].isalpha():
            raise FunctionError("DATE_PATTERN_INVALID",
                                f"{letters!r} is not a supported pattern field in {pattern!r}")
        else:
            text = letters
        parts.append(("text", text))
        regex.append(re.escape(text))
    return _Pattern(tuple(parts), re.compile("".join(regex)))


def _zone(name: Any) -> tzinfo | None:
    """``None``, ``Z``/``UTC``, an offset (``+01:00``) or an IANA name (``Europe/Lisbon``)."""
    if name is None:
        return None
    _argument(name, 3, str, "a timezone name")
    if name in ("Z", "UTC"):
        return UTC
    offset = _OFFSET.fullmatch(name)
    if offset is not None and int(offset.group(2)) < 24:
        return _fixed_offset(name)
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise FunctionError("DATE_TIMEZONE_INVALID", f"unknown timezone {name!r}") from None


def _fixed_offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign, hours, minutes = _OFFSET.fullmatch(text).groups()  # type: ignore[union-attr]
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return timezone(-delta if sign == "-" else delta)


def _instant(value: Any, zone: tzinfo | None) -> datetime:
    """An ISO-8601 text or epoch milliseconds; a text without offset is read in ``zone``."""
    _argument(value, 1, (str, int, float), "an ISO-8601 text or epoch milliseconds")
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=zone or UTC)
        return _EPOCH + timedelta(milliseconds=value)
    except (ValueError, OverflowError):
        raise FunctionError("DATE_VALUE_INVALID", f"{value!r} is not a date") from None


def _offset_text(moment: datetime, letters: str) -> str:
    total = int(moment.utcoffset().total_seconds()) // 60  # type: ignore[union-attr]
    if total == 0 and letters != "Z":
        return "Z"
    sign, hours, minutes = "-" if total < 0 else "+", abs(total) // 60, abs(total) % 60
    if letters == "XXX":
        return f"{sign}{hours:02d}:{minutes:02d}"
    if letters == "X" and minutes == 0:
        return f"{sign}{hours:02d}"
    return f"{sign}{hours:02d}{minutes:02d}"


def _field_text(moment: datetime, letters: str) -> str:
    name = _FIELDS[letters][0]
    if name == "offset":
        return _offset_text(moment, letters)
    number = {"year": moment.year, "year2": moment.year % 100, "month": moment.month,
              "day": moment.day, "hour": moment.hour, "minute": moment.minute,
              "second": moment.second, "millisecond": moment.microsecond // 1000}[name]
    return str(number).zfill(len(letters))


def _format_date(value: Any, pattern: Any, zone_name: Any = None) -> str | None:
    """Without a timezone, the value keeps its own offset: formatting never moves the clock."""
    if value is None:
        return None
    compiled = _pattern(_argument(pattern, 2, str, "a pattern"))
    zone = _zone(zone_name)
    moment = _instant(value, zone)
    if zone is not None:
        moment = moment.astimezone(zone)
    return "".join(_field_text(moment, part) if kind == "field" else part
                   for kind, part in compiled.parts)


def _parse_date(text: Any, pattern: Any, zone_name: Any = None) -> str | None:
    """The UTC ISO-8601 instant ``text`` names; without an offset in it, it is in ``zone``."""
    if text is None:
        return None
    _argument(text, 1, str, "a string")
    compiled = _pattern(_argument(pattern, 2, str, "a pattern"))
    zone = _zone(zone_name) or UTC
    match = compiled.regex.fullmatch(text)
    if match is None:
        raise FunctionError("DATE_PARSE_FAILED", f"{text!r} does not match {pattern!r}")
    found = {"year": 1970, "month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0,
             "millisecond": 0}
    for group, value in match.groupdict().items():
        name = _FIELDS[compiled.parts[int(group[1:]) - 1][1]][0]
        if name == "offset":
            zone = _fixed_offset(value)
        elif name == "year2":
            found["year"] = 2000 + int(value)
        else:
            found[name] = int(value)
    millisecond = found.pop("millisecond")
    try:
        moment = datetime(**found, microsecond=millisecond * 1000, tzinfo=zone)
    except ValueError as exc:
        raise FunctionError("DATE_PARSE_FAILED", f"{text!r} is not a valid date: {exc}") from None
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- registration ---------------------------------------------------------------------------


def _host(name: str, function: Callable[..., Any], least: int, most: int) -> Callable[..., Any]:
    """Check the argument count, and keep a failure where ``transform`` can find it."""

    def call(*args: Any) -> Any:
        try:
            if not least <= len(args) <= most:
                count = str(least) if least == most else f"{least} to {most}"
                raise FunctionError("T0410", f"takes {count} arguments, got {len(args)}")
            return function(*args)
        except FunctionError as exc:
            evaluation = _current.get()
            if evaluation is not None:
                evaluation.failure = HostFailure(name, exc)
            raise

    return call


HOST_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "uuid": _host("uuid", _uuid, 0, 0),
    "env": _host("env", _env, 1, 1),
    "formatDate": _host("formatDate", _format_date, 2, 3),
    "parseDate": _host("parseDate", _parse_date, 2, 3),
    "__ios_lookup": _host("lookup", _table_lookup, 4, 4),
    "__ios_pad_too_wide": _host("pad", _pad_too_wide, 1, 1),
}
"""Registered on every compiled expression, by the name an expression calls."""

_PRELUDE = (
    "($__ios_builtin_lookup := $lookup; $__ios_builtin_pad := $pad; "
    "$__ios_format := $formatDate; $__ios_parse := $parseDate; "
    "$lookup := function($source, $key, $default) { $type($source) = 'string'"
    " ? $__ios_lookup($source, $key, $exists($default), $default)"
    " : $__ios_builtin_lookup($source, $key) }; "
    "$formatDate := function($v, $p, $z) { $exists($v) ? $__ios_format($v, $p, $z) }; "
    "$parseDate := function($t, $p, $z) { $exists($t) ? $__ios_parse($t, $p, $z) }; "
    f"$pad := function($s, $w, $c)<s-ns?:s> {{ $abs($w) > {MAX_PAD_WIDTH}"
    " ? $__ios_pad_too_wide($w) : $__ios_builtin_pad($s, $w, $c) }; "
)
# $eval: an expression it evaluates sees the prelude's bindings, and its text may be built
_NEEDS_PRELUDE = re.compile(r"\$(?:lookup|formatDate|parseDate|pad|eval)\b")


def with_prelude(expression: str) -> str:
    """The expression to compile: wrapped in the prelude only if it names a wrapped function,
    so every other expression runs exactly as written (and ~1 µs faster)."""
    if _NEEDS_PRELUDE.search(expression) is None:
        return expression
    return f"{_PRELUDE}({expression}\n))"
