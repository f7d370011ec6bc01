"""The entry point the pipeline calls: bytes of any supported type in, JSON out, violations
listed; JSON checked against either format; output encoded as the target wants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrationos.schemas.payloads import (
    check_document,
    check_payload,
    decode_payload,
    encode_output,
    validate_value,
)
from integrationos.schemas.registry import ResolvedSchema

ORDER_XSD = ResolvedSchema("XSD", "orders", 1,
                           (Path(__file__).parent / "order.xsd").read_text())
LINE = ResolvedSchema("JSON_SCHEMA", "lines", 1, json.dumps({
    "type": "object", "required": ["sku"],
    "properties": {"sku": {"type": "string", "minLength": 2}, "qty": {"type": "integer"}},
    "x-fixedWidth": [{"name": "sku", "start": 1, "length": 4},
                     {"name": "qty", "start": 5, "length": 3}],
}))
ORDER = (b'<order xmlns="urn:example:orders" id="o-1"><customer>Ada</customer>'
         b'<placed>2026-02-01</placed><items><item line="1"><sku>A</sku><qty>3</qty>'
         b'<price>2.5</price></item></items><paid>false</paid></order>')


def test_json_is_the_default_and_is_parsed_strictly():
    assert decode_payload(b'{"a": 1}', None, None).value == {"a": 1}
    assert decode_payload(b'[1]', "application/vnd.acme+json", None).value == [1]
    refused = decode_payload(b'{"a": NaN}', "application/json; charset=utf-8", None)
    assert not refused.ok and refused.violations[0]["message"].startswith("not JSON")


def test_xml_is_decoded_and_validated_by_its_xsd_in_one_step():
    result = decode_payload(ORDER, "text/xml; charset=utf-8", ORDER_XSD)
    assert result.ok and result.validated
    assert result.value["order"]["items"]["item"][0] == {
        "@line": 1, "sku": "A", "qty": 3, "price": 2.5}


@pytest.mark.parametrize("schema", [None, LINE])
def test_xml_without_an_xsd_is_a_violation(schema):
    result = decode_payload(ORDER, "application/xml", schema)
    assert result.violations == [{"pointer": "/",
                                  "message": "an XML payload needs an XSD sourceSchema"}]


def test_csv_and_fixed_width_decode_to_records():
    csv = decode_payload(b"sku,qty\nPEN1,2\n", "text/csv", LINE)
    assert csv.ok and csv.records == [{"sku": "PEN1", "qty": 2}] and csv.value is None
    fixed = decode_payload("PÉN1  2\nINK   7\n".encode("latin-1"),
                           "text/x-fixed-width; charset=latin-1", LINE)
    assert fixed.ok and fixed.records == [{"sku": "PÉN1", "qty": 2}, {"sku": "INK", "qty": 7}]
    assert "not an XSD" in decode_payload(b"a\n1\n", "text/csv", ORDER_XSD).violations[0][
        "message"]


def test_an_unsupported_content_type_is_named():
    result = decode_payload(b"x", "application/pdf", None)
    assert "unsupported content type 'application/pdf'" in result.violations[0]["message"]


def test_check_payload_validates_every_record_with_its_index():
    result = check_payload(b"sku,qty\nPEN1,2\nX,3\n,4\n", "text/csv", LINE)
    assert [(v["pointer"], v["message"]) for v in result.violations] == [
        ("/1/sku", "'X' is too short"),
        ("/2/sku", "None is not of type 'string'"),
    ]
    decoding_failed = check_payload(b"sku,qty\nPEN1,two\n", "text/csv", LINE)
    assert [v["pointer"] for v in decoding_failed.violations] == ["/0/qty"]
    assert check_payload(b'{"sku": "A"}', None, LINE).violations[0]["pointer"] == "/sku"


def test_validate_value_checks_json_against_an_xsd_by_encoding_it():
    decoded = decode_payload(ORDER, "application/xml", ORDER_XSD).value
    assert validate_value(ORDER_XSD, decoded) == []
    decoded["order"]["paid"] = "maybe"
    assert validate_value(ORDER_XSD, decoded) == [
        {"pointer": "/order/paid", "message": "'maybe' is not a boolean value"}]
    assert validate_value(LINE, {"qty": 1}) == [
        {"pointer": "/", "message": "'sku' is a required property"}]


def test_output_is_xml_for_an_xsd_target_and_json_otherwise():
    decoded = decode_payload(ORDER, "application/xml", ORDER_XSD).value
    data, content_type, found = encode_output(ORDER_XSD, decoded)
    assert content_type == "application/xml" and found == []
    assert decode_payload(data, content_type, ORDER_XSD).value == decoded
    assert encode_output(None, {"é": 1}) == ('{"é":1}'.encode(), "application/json", [])
    data, content_type, found = encode_output(LINE, {"sku": 5})
    assert json.loads(data) == {"sku": 5} and content_type == "application/json"
    assert found == [{"pointer": "/sku", "message": "5 is not of type 'string'"}]


def test_a_document_for_an_xsd_is_a_string_of_xml():
    assert check_document(ORDER_XSD, ORDER.decode())[1] == []
    assert check_document(ORDER_XSD, {"order": {}}) == (None, [{
        "pointer": "/", "message": "a document for an XSD is a string of XML"}])
    assert check_document(LINE, {"sku": "PEN1"}) == ({"sku": "PEN1"}, [])
