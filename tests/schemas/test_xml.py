"""XML against an XSD: decoding to JSON, every error by XPath, encoding back, and parsing that
never resolves entities or fetches anything."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from integrationos.schemas.xml import InvalidXsd, compile_xsd, decode_xml, encode_xml

ORDER_XSD = (Path(__file__).parent / "order.xsd").read_text()

ORDER = b"""<?xml version="1.0" encoding="UTF-8"?>
<order xmlns="urn:example:orders" id="o-17">
  <customer>Ada Lovelace</customer>
  <placed>2026-02-01</placed>
  <items>
    <item line="1"><sku>PEN-01</sku><qty>2</qty><price>9.50</price></item>
    <item line="2"><sku>INK-07</sku><qty>1</qty><price>3</price></item>
  </items>
  <paid>true</paid>
</order>"""

DECODED = {"order": {
    "@id": "o-17", "customer": "Ada Lovelace", "placed": "2026-02-01",
    "items": {"item": [
        {"@line": 1, "sku": "PEN-01", "qty": 2, "price": 9.5},
        {"@line": 2, "sku": "INK-07", "qty": 1, "price": 3.0},
    ]},
    "paid": True,
}}


def test_an_order_decodes_to_typed_json_without_namespace_prefixes():
    value, violations = decode_xml(ORDER_XSD, ORDER)
    assert violations == []
    assert value == DECODED


def test_an_order_round_trips_through_xml():
    data, violations = encode_xml(ORDER_XSD, DECODED)
    assert violations == []
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert b'xmlns="urn:example:orders"' in data and b"ns0:" not in data
    assert b"<customer>Ada Lovelace</customer>" in data
    again, violations = decode_xml(ORDER_XSD, data)
    assert violations == [] and again == DECODED


def test_every_error_of_a_document_is_listed_by_xpath():
    bad = b"""<order xmlns="urn:example:orders">
      <customer>Ada</customer><placed>2026-13-01</placed>
      <items>
        <item line="x"><sku>A</sku><qty>0</qty><price>cheap</price></item>
        <item line="2"><qty>1</qty><price>3</price></item>
      </items>
      <paid>maybe</paid><note/>
    </order>"""
    value, violations = decode_xml(ORDER_XSD, bad)
    assert value is not None, "lax decoding still returns what it could read"
    by_path = {}
    for violation in violations:
        by_path.setdefault(violation["pointer"], []).append(violation["message"])
    assert set(by_path) == {
        "/order", "/order/placed", "/order/items/item[1]", "/order/items/item[1]/qty",
        "/order/items/item[1]/price", "/order/items/item[2]", "/order/paid",
    }
    assert any("'id'" in m for m in by_path["/order"])
    assert any("note" in m for m in by_path["/order"])
    assert any("line='x'" in m for m in by_path["/order/items/item[1]"])
    assert any("sku" in m for m in by_path["/order/items/item[2]"])
    assert len(violations) == 8


def test_an_undeclared_root_and_malformed_xml_are_violations():
    assert decode_xml(ORDER_XSD, b"<invoice/>")[1] == [
        {"pointer": "/invoice", "message": "'invoice' is not an element of the schema"}]
    value, violations = decode_xml(ORDER_XSD, b"<order><customer>")
    assert value is None and violations[0]["message"].startswith("not well-formed XML")


def test_an_external_entity_is_refused_and_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE order [<!ENTITY x SYSTEM "file://{secret}">]>'
           '<order xmlns="urn:example:orders" id="1"><customer>&x;</customer></order>').encode()
    value, violations = decode_xml(ORDER_XSD, xxe)
    assert value is None
    assert violations == [{"pointer": "/", "message": "DTDs, entities and external "
                           "references are not allowed in XML payloads"}]


def test_entity_expansion_is_refused():
    laughs = (b'<!DOCTYPE o [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>'
              b'<order xmlns="urn:example:orders">&b;</order>')
    assert "not allowed" in decode_xml(ORDER_XSD, laughs)[1][0]["message"]


@pytest.fixture
def listener():
    """A real HTTP server that counts requests: proof that nothing is fetched."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()
    server.server_close()


def test_no_dtd_or_schema_is_fetched_from_the_network(listener):
    url, hits = listener
    dtd = f'<!DOCTYPE order SYSTEM "{url}/order.dtd"><order/>'.encode()
    assert "not allowed" in decode_xml(ORDER_XSD, dtd)[1][0]["message"]
    including = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                 f'<xs:include schemaLocation="{url}/more.xsd"/></xs:schema>')
    with pytest.raises(InvalidXsd, match="block"):
        compile_xsd(including)
    assert hits == []


@pytest.mark.parametrize("definition, message", [
    ("not xml at all", "invalid XML syntax"),
    ("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'/>", "no global element"),
    ("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'>"
     "<xs:element name='a' type='nope'/></xs:schema>", "unknown type"),
])
def test_an_unusable_xsd_is_refused(definition, message):
    with pytest.raises(InvalidXsd, match=message):
        compile_xsd(definition)


def test_encoding_lists_every_violation_of_the_output():
    data, violations = encode_xml(ORDER_XSD, {"order": {
        "customer": "Ada", "placed": "2026-02-01",
        "items": {"item": [{"@line": 1, "sku": "A", "qty": 0, "price": "cheap"}]},
        "paid": "maybe"}})
    assert data.startswith(b"<?xml")
    assert {(v["pointer"], v["message"]) for v in violations} >= {
        ("/order", "missing required attribute 'id'"),
        ("/order/items/item/qty", "value must be positive"),
        ("/order/paid", "'maybe' is not a boolean value"),
    }
    assert any(v["pointer"] == "/order/items/item/price" for v in violations)


@pytest.mark.parametrize("value", [[1, 2], {"order": {}, "extra": {}}, {"invoice": {}}])
def test_output_must_name_one_global_root_element(value):
    data, violations = encode_xml(ORDER_XSD, value)
    assert data == b""
    assert len(violations) == 1 and "order" in violations[0]["message"]


def test_unqualified_local_elements_keep_their_empty_namespace_when_encoded():
    xsd = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:n">'
           '<xs:element name="note"><xs:complexType><xs:sequence>'
           '<xs:element name="body" type="xs:string"/></xs:sequence></xs:complexType>'
           '</xs:element></xs:schema>')
    data, violations = encode_xml(xsd, {"note": {"body": "hi"}})
    assert violations == []
    assert b'<ns0:note xmlns:ns0="urn:n">' in data and b"<body>hi</body>" in data
    assert decode_xml(xsd, data) == ({"note": {"body": "hi"}}, [])
