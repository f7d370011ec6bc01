"""CSV and fixed-width payloads to typed JSON records; every problem names row and column."""

from __future__ import annotations

import pytest

from integrationos.schemas.records import (
    MAX_ROWS,
    decode_csv,
    decode_fixed_width,
    definition_problems,
)

ORDER_LINE = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "qty": {"type": "integer"},
        "price": {"type": ["number", "null"]},
        "gift": {"type": "boolean"},
    },
}


def test_csv_rows_become_records_typed_by_the_schema():
    data = (b'sku,qty,price,gift,note\n'
            b'PEN-01,2,9.50,true,"red, fine"\n'
            b'"INK ""07""",1,,no,"two\nlines"\n'
            b'\n'
            b'PAD-3,+10,1e2,1,\n')
    records, problems = decode_csv(data, ORDER_LINE)
    assert problems == []
    assert records == [
        {"sku": "PEN-01", "qty": 2, "price": 9.5, "gift": True, "note": "red, fine"},
        {"sku": 'INK "07"', "qty": 1, "price": None, "gift": False, "note": "two\nlines"},
        {"sku": "PAD-3", "qty": 10, "price": 100.0, "gift": True, "note": ""},
    ]


def test_without_a_schema_every_field_stays_a_string():
    records, problems = decode_csv(b"a,b\n1,\n", None)
    assert problems == [] and records == [{"a": "1", "b": ""}]


def test_bad_rows_are_named_by_row_and_column():
    data = (b"sku,qty,price,gift\n"
            b"PEN-01,2.5,9.50,true\n"
            b"INK-07,1\n"
            b"PAD-3,x,cheap,perhaps\n"
            b"TOO,1,2,true,many\n")
    records, problems = decode_csv(data, ORDER_LINE)
    assert [(p["row"], p["column"], p["pointer"]) for p in problems] == [
        (2, "qty", "/0/qty"),
        (3, None, "/1"),
        (4, "qty", "/2/qty"), (4, "price", "/2/price"), (4, "gift", "/2/gift"),
        (5, None, "/3"),
    ]
    assert problems[0]["message"] == "row 2, column 'qty': '2.5' is not an integer"
    assert problems[1]["message"] == "row 3: 2 fields, the header has 4"
    assert records[1] == {"sku": "INK-07", "qty": 1, "price": None, "gift": None}
    assert len(records) == 4


def test_delimiter_quote_and_encoding_come_from_the_schema_or_the_charset():
    schema = ORDER_LINE | {"x-csv": {"delimiter": ";", "quote": "'", "encoding": "latin-1"}}
    data = "sku;qty\n'Crème; brûlée';3\n".encode("latin-1")
    assert decode_csv(data, schema) == ([{"sku": "Crème; brûlée", "qty": 3}], [])
    utf16 = "sku;qty\nA;1\n".encode("utf-16")
    assert decode_csv(utf16, schema, charset="utf-16") == ([{"sku": "A", "qty": 1}], [])


def test_undecodable_bytes_and_broken_quoting_are_reported():
    assert decode_csv(b"sku\nok\n\xff\n", None)[1] == [
        {"pointer": "/", "row": 3, "column": None, "message": "row 3: not valid utf-8 (byte 7)"}]
    _, problems = decode_csv(b'sku,qty\n"PEN,2\n', ORDER_LINE)
    assert [p["message"] for p in problems] == ["row 2: malformed CSV: unexpected end of data"]


def test_the_header_must_name_each_column_once():
    _, problems = decode_csv(b"sku,,sku\n1,2,3\n", None)
    assert [p["message"] for p in problems] == [
        "row 1: header column 2 has no name",
        "row 1, column 'sku': the header names this column twice",
    ]
    assert decode_csv(b"", None)[1][0]["message"].endswith("it needs a header row")


def test_rows_past_the_limit_are_refused():
    data = b"n\n" + b"1\n" * (MAX_ROWS + 1)
    records, problems = decode_csv(data, None)
    assert len(records) == MAX_ROWS
    assert problems == [{"pointer": "/", "row": MAX_ROWS + 2, "column": None,
                         "message": f"row {MAX_ROWS + 2}: more than {MAX_ROWS} rows"}]


FIXED = ORDER_LINE | {"x-fixedWidth": [
    {"name": "sku", "start": 1, "length": 6},
    {"name": "qty", "start": 7, "length": 4},
    {"name": "price", "start": 11, "length": 8},
]}


def test_fixed_width_lines_are_cut_by_the_layout_and_typed():
    data = (b"PEN-010002    9.50\r\n"
            b"INK   0001        \n"
            b"\n"
            b"PAD   12")
    records, problems = decode_fixed_width(data, FIXED)
    assert problems == []
    assert records == [
        {"sku": "PEN-01", "qty": 2, "price": 9.5},
        {"sku": "INK", "qty": 1, "price": None},
        {"sku": "PAD", "qty": 12, "price": None},
    ]


def test_fixed_width_problems_name_row_and_field():
    data = "PEN-0100x2    9.50\nINK   0001    1.00  trailing\nÄÖÜ   0003    2.00\n"
    records, problems = decode_fixed_width(data.encode(), FIXED)
    assert [(p["row"], p["column"], p["pointer"]) for p in problems] == [
        (1, "qty", "/0/qty"), (2, None, "/1")]
    assert problems[1]["message"] == "row 2: characters past column 18, the end of the layout"
    assert records[2] == {"sku": "ÄÖÜ", "qty": 3, "price": 2.0}, "positions count characters"


def test_fixed_width_needs_a_layout():
    _, problems = decode_fixed_width(b"abc\n", ORDER_LINE)
    assert "x-fixedWidth" in problems[0]["message"]


@pytest.mark.parametrize("schema, pointers", [
    ({"x-fixedWidth": []}, ["/x-fixedWidth"]),
    ({"x-fixedWidth": [{"name": "a", "start": 0, "length": True}]},
     ["/x-fixedWidth/0/start", "/x-fixedWidth/0/length"]),
    ({"x-fixedWidth": [{"name": "a", "start": 1, "length": 10},
                       {"name": "b", "start": 3, "length": 2},
                       {"name": "a", "start": 11, "length": 1}]},
     ["/x-fixedWidth/2/name", "/x-fixedWidth/1"]),
    ({"x-csv": {"delimiter": "\n", "quote": "ab", "encoding": "klingon"}},
     ["/x-csv/delimiter", "/x-csv/quote", "/x-csv/encoding"]),
    ({"x-csv": {"separator": ";"}}, ["/x-csv"]),
])
def test_broken_options_are_found_when_a_schema_is_registered(schema, pointers):
    assert [p["pointer"] for p in definition_problems(schema)] == pointers
