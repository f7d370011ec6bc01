"""Live preview: evaluate an expression with optional schemas, never saving anything."""

from __future__ import annotations

import json
from pathlib import Path

from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event
from tests.api.conftest import ACME, GLOBEX, assert_error
from tests.api.test_reads import conforms

SEED = ('{"FirstName": $substringBefore($.nome_completo, " "), '
        '"LastName": $substringAfter($.nome_completo, " "), "Email": $.email}')
ORDER_XSD = (Path(__file__).parents[1] / "schemas" / "order.xsd").read_text()
ORDER_XML = ('<order xmlns="urn:example:orders" id="A1"><customer>Ana</customer>'
             '<placed>2026-12-01</placed><items>'
             '<item line="1"><sku>X</sku><qty>2</qty><price>9.50</price></item>'
             '</items><paid>true</paid></order>')


def preview(client, body, headers=ACME):
    response = client.post("/v1/transformations/preview", headers=headers, json=body)
    assert response.status_code == 200, response.text
    conforms(response.json(), "PreviewResult")
    return response.json()


def test_the_seed_mapping_previews_the_seed_contact(client):
    answer = preview(client, {"expression": SEED,
                              "payload": {"nome_completo": "João Silva", "email": "j@ex.pt"}})
    assert answer["result"] == {"FirstName": "João", "LastName": "Silva", "Email": "j@ex.pt"}
    assert answer["errors"] == [] and answer["durationMs"] >= 0
    assert answer["validation"]["source"]["status"] == "SKIPPED"


def test_a_syntax_error_is_part_of_the_answer_with_its_code(client):
    answer = preview(client, {"expression": '{"a": $.x +', "payload": {}})
    assert answer["result"] is None
    assert answer["errors"][0]["code"].startswith("S0")


def test_bindings_and_inline_schemas_apply(client):
    answer = preview(client, {
        "expression": '{"total": $.qty * $price}', "payload": {"qty": "two"},
        "bindings": {"price": 3},
        "sourceSchema": {"type": "object", "properties": {"qty": {"type": "integer"}}},
    })
    assert answer["validation"]["source"]["status"] == "FAILED"
    assert answer["validation"]["source"]["errors"][0]["pointer"] == "/qty"
    ok = preview(client, {"expression": '{"total": $.qty * $price}', "payload": {"qty": 2},
                          "bindings": {"price": 3},
                          "targetSchema": {"type": "object", "required": ["total", "tax"]}})
    assert ok["validation"]["target"]["status"] == "FAILED"
    assert [e["code"] for e in ok["errors"]] == ["TARGET_SCHEMA_VIOLATION"]


def test_a_registered_xsd_decodes_an_xml_payload(client, seed):
    seed.apply(Event(t.SCHEMA_VERSION_ADDED, "acme", "sch_orders", {
        "id": "sch_orders", "name": "orders", "format": "XSD", "version": 1,
        "definition": ORDER_XSD, "compatibility": "BACKWARD"}))
    answer = preview(client, {
        "expression": '{"id": order.`@id`, "total": $sum(order.items.item.(qty * price))}',
        "payload": ORDER_XML, "sourceSchema": "orders"})
    assert answer["errors"] == []
    assert answer["result"] == {"id": "A1", "total": 19.0}
    assert answer["validation"]["source"]["status"] == "OK"
    # another tenant does not see that schema: the name is not registered for it
    other = preview(client, {"expression": "$", "payload": {}, "sourceSchema": "orders"},
                    headers=GLOBEX)
    assert other["validation"]["source"]["status"] == "SKIPPED"
    assert "not registered" in other["validation"]["source"]["detail"]


def test_env_and_static_lookups_are_available(client, seed):
    seed.apply(
        Event(t.ENVIRONMENT_VARIABLE_SET, "acme", "DEV",
              {"environment": "DEV", "name": "REGION", "value": "eu-west"}),
        Event(t.LOOKUP_CREATED, "acme", "lkp_c", {
            "id": "lkp_c", "name": "countries", "lookupType": "STATIC", "configJson": "{}",
            "version": 1}),
        Event(t.LOOKUP_ROWS_REPLACED, "acme", "lkp_c", {
            "id": "lkp_c", "rowsVersion": 1, "rowsJson": json.dumps({"PT": "Portugal"})}),
    )
    answer = preview(client, {
        "expression": '{"region": $env("REGION"), "country": $lookup("countries", $.c), '
                      '"other": $lookup("countries", "XX", "?")}',
        "payload": {"c": "PT"}})
    assert answer["result"] == {"region": "eu-west", "country": "Portugal", "other": "?"}


def test_bad_requests_are_4xx(client):
    assert_error(client.post("/v1/transformations/preview", headers=ACME, json={}),
                 422, "VALIDATION_FAILED")
    assert_error(client.post("/v1/transformations/preview", headers=ACME, content=b"{"),
                 400, "MALFORMED_JSON")
