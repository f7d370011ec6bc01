"""The custom JSONata functions, through ``transform`` as flows call them, and the limit
they run under: each function, each error code, and that a code survives jsonatapy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import jsonatapy
import pytest

from integrationos.engine.functions import MISSING, EvaluationContext, LookupFailed
from integrationos.engine.transform import TransformError, evaluation_timeout_ms, transform

TABLES = {"countries": {"gb": "United Kingdom", "pt": "Portugal", "xx": None}}


def resolver(table: str, key: Any) -> Any:
    if table == "crm":
        raise LookupFailed("LOOKUP_SOURCE_DOWN", "the CRM did not answer", retryable=True)
    if table not in TABLES:
        raise LookupFailed("LOOKUP_TABLE_UNKNOWN", f"no table {table!r}")
    return TABLES[table].get(key, MISSING)


CONTEXT = EvaluationContext("acme", "production", {"API_URL": "https://api.acme.test"}, resolver)


def run(expression: str, payload: Any = None, context: EvaluationContext | None = CONTEXT) -> Any:
    return transform(expression, payload if payload is not None else {}, context)[0]


def failure(expression: str, payload: Any = None,
            context: EvaluationContext | None = CONTEXT) -> TransformError:
    with pytest.raises(TransformError) as caught:
        run(expression, payload, context)
    return caught.value


# --- $lookup --------------------------------------------------------------------------------


def test_lookup_with_a_table_name_asks_the_resolver():
    assert run('$lookup("countries", country)', {"country": "pt"}) == "Portugal"
    assert run('$lookup("countries", "xx")') is None  # a key that holds null is not missing


def test_an_unknown_key_gives_the_default_or_a_permanent_error_at_the_call():
    assert run('$lookup("countries", "zz", "Unknown")') == "Unknown"
    assert run('$lookup("countries", "zz", null)') is None
    error = failure('{"c": $lookup("countries", country)}', {"country": "zz"})
    assert (error.code, error.retryable, error.position) == ("LOOKUP_KEY_MISSING", False, 13)
    assert "'zz'" in error.message and "$lookup" in error.message


def test_an_absent_key_is_an_unknown_key():
    assert run('$lookup("countries", country, "?")', {}) == "?"
    assert failure('$lookup("countries", country)', {}).code == "LOOKUP_KEY_MISSING"


def test_without_a_resolver_a_table_lookup_is_unavailable():
    no_tables = EvaluationContext("acme", "production")
    for context in (no_tables, None):
        error = failure('$lookup("countries", "gb")', context=context)
        assert (error.code, error.retryable) == ("LOOKUP_UNAVAILABLE", False)


def test_the_resolvers_own_failure_keeps_its_code_and_retry_class():
    down = failure('$lookup("crm", id)', {"id": 7})
    assert (down.code, down.retryable) == ("LOOKUP_SOURCE_DOWN", True)
    assert "the CRM did not answer" in down.message
    assert down.as_dict()["retryable"] is True
    unknown = failure('$lookup("prices", id)', {"id": 7})
    assert (unknown.code, unknown.retryable) == ("LOOKUP_TABLE_UNKNOWN", False)


def test_a_lookup_slower_than_the_time_limit_is_retryable_and_passes_once_cached():
    cache: dict[Any, Any] = {}

    def slow_source(table: str, key: Any) -> Any:
        if key not in cache:
            time.sleep(evaluation_timeout_ms() / 1000 + 0.05)
            cache[key] = key.upper()
        return cache[key]

    slow = EvaluationContext("acme", "dev", {}, slow_source)
    expression = '{"name": $lookup("crm", id), "id": id}'
    error = failure(expression, {"id": "c1"}, context=slow)
    assert (error.code, error.retryable) == ("LOOKUP_SLOW", True)
    assert run(expression, {"id": "c1"}, context=slow) == {"name": "C1", "id": "c1"}


def test_a_resolver_that_breaks_fails_permanently_and_names_the_exception():
    def broken(table: str, key: Any) -> Any:
        return {"a": 1}[key]

    error = failure('$lookup("t", "b")', context=EvaluationContext("acme", "dev", {}, broken))
    assert (error.code, error.retryable) == ("LOOKUP_FAILED", False)
    assert "KeyError" in error.message


def test_a_resolver_value_that_is_not_json_is_a_function_failure():
    odd = EvaluationContext("acme", "dev", {}, lambda table, key: {1, 2})
    assert failure('$lookup("t", "k")', context=odd).code == "FUNCTION_FAILED"


@pytest.mark.parametrize("expression", [
    '{"found": $lookup({"a": 1}, "a"), "absent": $lookup({"a": 1}, "b")}',
    '$lookup(items, "b")',
    '$exists($lookup({"a": 1}, "b"))',
    '$sift({"a": "hello", "hello": "again"}, function($v, $k, $o) { $lookup($o, $v) })',
])
def test_lookup_on_an_object_is_jsonatas_own(expression: str):
    payload = {"items": [{"b": [1, 2]}, {"b": 3}, {"c": 4}]}
    assert run(expression, payload) == jsonatapy.compile(expression).evaluate(payload)


def test_lookup_on_an_object_keeps_the_builtins_type_check():
    assert failure('$lookup({"a": 1}, 1)').code == "T0410"


# --- $uuid, $env ----------------------------------------------------------------------------


def test_uuid_gives_a_new_version_4_uuid_each_call():
    first, second = run("[$uuid(), $uuid()]")
    assert uuid.UUID(first).version == 4 and first != second
    assert failure("$uuid(1)").code == "T0410"


def test_env_reads_the_environments_variables():
    assert run('$env("API_URL") & "/contacts"') == "https://api.acme.test/contacts"


def test_an_undefined_variable_is_a_permanent_error_naming_it():
    error = failure('$env("API_TOKEN")')
    assert (error.code, error.retryable, error.position) == ("ENV_UNDEFINED", False, 4)
    assert "API_TOKEN" in error.message
    assert failure('$env("API_URL")', context=None).code == "ENV_UNDEFINED"
    assert failure("$env(1)").code == "T0410"


def test_the_context_belongs_to_one_evaluation_only():
    assert run('$env("API_URL")') == "https://api.acme.test"
    assert failure('$env("API_URL")', context=None).code == "ENV_UNDEFINED"


# --- $formatDate ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "pattern", "zone", "expected"), [
    ("2024-03-05T07:08:09.045Z", "yyyy-MM-dd HH:mm:ss.SSS", None, "2024-03-05 07:08:09.045"),
    ("2024-03-05T07:08:09Z", "d/M/yy", None, "5/3/24"),
    ("2024-03-05T07:08:09+05:30", "HH:mm XXX|XX|X|Z", None, "07:08 +05:30|+0530|+0530|+0530"),
    ("2024-03-05T07:08:09-03:00", "X", None, "-03"),
    ("2024-03-05T07:08:09Z", "XXX|Z", None, "Z|+0000"),
    ("2024-03-05T07:08:09Z", "yyyy-MM-dd'T'HH:mm 'o''clock' ''", None,
     "2024-03-05T07:08 o'clock '"),
    (1709622489045, "yyyy-MM-dd HH:mm:ss.SSS XXX", None, "2024-03-05 07:08:09.045 Z"),
    (1709622489045, "HH:mm XXX", "Europe/Lisbon", "07:08 Z"),
    (1720163289000, "HH:mm XXX", "Europe/Lisbon", "08:08 +01:00"),
    ("2024-07-05T07:08:09Z", "dd/MM HH:mm", "America/Sao_Paulo", "05/07 04:08"),
    ("2024-07-05T07:08:09Z", "HH:mm XXX", "+02:00", "09:08 +02:00"),
    ("2024-07-05T07:08:09", "HH:mm XXX", "Europe/Lisbon", "07:08 +01:00"),
    ("2024-07-05", "dd.MM.yyyy", None, "05.07.2024"),
])
def test_format_date_patterns_and_timezones(value: Any, pattern: str, zone: str | None,
                                            expected: str):
    zone_argument = f', "{zone}"' if zone else ""
    assert run(f'$formatDate(v, "{pattern}"{zone_argument})', {"v": value}) == expected


def test_format_date_of_nothing_is_nothing():
    assert run('{"d": $formatDate(missing, "yyyy")}') == {}


@pytest.mark.parametrize(("expression", "code"), [
    ('$formatDate("2024-03-05", "yyyy-MM-dd EEE")', "DATE_PATTERN_INVALID"),
    ('$formatDate("2024-03-05", "hh:mm")', "DATE_PATTERN_INVALID"),
    ('$formatDate("2024-03-05", "yyyy \'at")', "DATE_PATTERN_INVALID"),
    ('$formatDate("5 March", "yyyy")', "DATE_VALUE_INVALID"),
    ('$formatDate(true, "yyyy")', "T0410"),
    ('$formatDate("2024-03-05", 4)', "T0410"),
    ('$formatDate("2024-03-05", "yyyy", "Europe/Atlantis")', "DATE_TIMEZONE_INVALID"),
    ('$formatDate("2024-03-05", "yyyy", "../../etc/passwd")', "DATE_TIMEZONE_INVALID"),
])
def test_format_date_errors(expression: str, code: str):
    error = failure(expression)
    assert (error.code, error.retryable, error.position) == (code, False, 11)


# --- $parseDate -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "pattern", "zone", "expected"), [
    ("05/03/2024", "dd/MM/yyyy", None, "2024-03-05T00:00:00.000Z"),
    ("5/3/24", "d/M/yy", None, "2024-03-05T00:00:00.000Z"),
    ("2024-03-05 07:08:09.045", "yyyy-MM-dd HH:mm:ss.SSS", None, "2024-03-05T07:08:09.045Z"),
    ("2024-03-05T07:08:09+05:30", "yyyy-MM-dd'T'HH:mm:ssXXX", None, "2024-03-05T01:38:09.000Z"),
    ("2024-03-05T07:08:09-0300", "yyyy-MM-dd'T'HH:mm:ssZ", None, "2024-03-05T10:08:09.000Z"),
    ("2024-03-05T07:08:09Z", "yyyy-MM-dd'T'HH:mm:ssX", None, "2024-03-05T07:08:09.000Z"),
    ("05/07/2024 10:00", "dd/MM/yyyy HH:mm", "Europe/Lisbon", "2024-07-05T09:00:00.000Z"),
    ("05/01/2024 10:00", "dd/MM/yyyy HH:mm", "Europe/Lisbon", "2024-01-05T10:00:00.000Z"),
    ("05/01/2024 10:00", "dd/MM/yyyy HH:mm", "-03:00", "2024-01-05T13:00:00.000Z"),
    ("03/2024", "MM/yyyy", None, "2024-03-01T00:00:00.000Z"),
])
def test_parse_date_gives_the_utc_instant(text: str, pattern: str, zone: str | None,
                                          expected: str):
    zone_argument = f', "{zone}"' if zone else ""
    assert run(f'$parseDate(t, "{pattern}"{zone_argument})', {"t": text}) == expected


@pytest.mark.parametrize(("text", "pattern"), [
    ("2024-03-05", "dd/MM/yyyy"),
    ("05/03/2024 ", "dd/MM/yyyy"),
    ("31/02/2024", "dd/MM/yyyy"),
    ("05/13/2024", "dd/MM/yyyy"),
    ("24:00", "HH:mm"),
    ("2024-03-05T07:08:09+5:30", "yyyy-MM-dd'T'HH:mm:ssXXX"),
])
def test_text_that_does_not_match_is_a_clear_permanent_error(text: str, pattern: str):
    error = failure(f'$parseDate(t, "{pattern}")', {"t": text})
    assert (error.code, error.retryable, error.position) == ("DATE_PARSE_FAILED", False, 10)
    assert text in error.message


def test_parse_date_of_nothing_is_nothing_and_of_a_number_an_error():
    assert run('{"d": $parseDate(missing, "yyyy")}') == {}
    assert failure('$parseDate(2024, "yyyy")').code == "T0410"


@pytest.mark.parametrize(("text", "pattern", "zone"), [
    ("05/03/2024 07:08:09.045", "dd/MM/yyyy HH:mm:ss.SSS", None),
    ("2024-07-05T23:30:00+05:30", "yyyy-MM-dd'T'HH:mm:ssXXX", "+05:30"),
    ("5/7/24 23:30", "d/M/yy HH:mm", "Europe/Lisbon"),
    ("20240105 1000 +0100", "yyyyMMdd HHmm Z", "Europe/Paris"),
])
def test_dates_round_trip_through_parse_and_format(text: str, pattern: str, zone: str | None):
    zone_argument = f', "{zone}"' if zone else ""
    expression = (f'$formatDate($parseDate(t, "{pattern}"{zone_argument}), "{pattern}"'
                  f"{zone_argument})")
    assert run(expression, {"t": text}) == text


def test_an_error_in_a_function_called_twice_has_no_single_position():
    error = failure('[$env("API_URL"), $env("NOPE")]')
    assert error.code == "ENV_UNDEFINED" and error.position is None


# --- $pad, bounded ----------------------------------------------------------------------


@pytest.mark.parametrize("expression", [
    '$pad("ab", 5)', '$pad("ab", -5, "#")', 'name.$pad(6)', 'names.$pad(4, "*")',
    '{"x": $pad(missing, 3)}', '$eval("$pad(name, 3)")',
])
def test_pad_is_jsonatas_own_below_the_limit(expression: str):
    payload = {"name": "xy", "names": ["a", "bb"]}
    assert run(expression, payload) == jsonatapy.compile(expression).evaluate(payload)


def test_a_pad_wider_than_the_limit_is_refused_before_it_allocates():
    error = failure('$pad("", 1e9)')
    assert (error.code, error.position) == ("STRING_TOO_LONG", 4)
    assert "1,000,000,000" in error.message
    assert failure('$eval("$p" & "ad(\'\', -2e9)")').code == "STRING_TOO_LONG"
    assert failure('$pad("a", "5")').code == "T0410"


# --- the time limit -------------------------------------------------------------------------


@pytest.fixture
def fresh_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    evaluation_timeout_ms.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    evaluation_timeout_ms.cache_clear()


def test_the_time_limit_is_read_from_the_environment(fresh_timeout: pytest.MonkeyPatch):
    fresh_timeout.setenv("IOS_JSONATA_TIMEOUT_MS", "40")
    assert evaluation_timeout_ms() == 40


def test_without_a_setting_the_time_limit_is_the_default(fresh_timeout: pytest.MonkeyPatch):
    fresh_timeout.delenv("IOS_JSONATA_TIMEOUT_MS", raising=False)
    assert evaluation_timeout_ms() == 250


@pytest.mark.parametrize("text", ["0", "-5", "1.5", "fast", "60001"])
def test_a_time_limit_that_makes_no_sense_is_refused(fresh_timeout: pytest.MonkeyPatch,
                                                     text: str):
    fresh_timeout.setenv("IOS_JSONATA_TIMEOUT_MS", text)
    with pytest.raises(ValueError, match="IOS_JSONATA_TIMEOUT_MS"):
        evaluation_timeout_ms()


def test_a_runaway_expression_is_stopped_by_the_time_limit_with_its_code():
    error = failure("($f := function($x){ $f($x) }; $f(1))")
    assert (error.code, error.retryable) == ("D1012", False)
