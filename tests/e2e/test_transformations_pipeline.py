"""Issue 3 end to end on the real broker, worker and API: an XML order validated by its
registered XSD, mapped with JSONata using the three kinds of lookup table (static rows, an
HTTP service, a SQL database) and an environment variable,
checked against a target schema and delivered as JSON; CSV rows typed by a schema; bad XML
dead-lettered with every violation listed by XPath."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx

from integrationos.settings import Settings
from tests.support import RecordingTarget, count_messages, wait_for

ORDER_XSD = (Path(__file__).parents[1] / "schemas" / "order.xsd").read_text()


def _order(order_id: str, qty: str = "2", paid: str = "true") -> bytes:
    return (f'<order xmlns="urn:example:orders" id="{order_id}"><customer>Ana</customer>'
            f'<placed>2026-12-01</placed><items>'
            f'<item line="1"><sku>X</sku><qty>{qty}</qty><price>9.50</price></item>'
            f'<item line="2"><sku>Y</sku><qty>1</qty><price>5</price></item>'
            f'</items><paid>{paid}</paid></order>').encode()


MAPPING = """{
  "orderId": order.`@id`,
  "region": $env("REGION"),
  "lines": [order.items.item.{"sku": sku, "name": $lookup("products", sku, "unknown"),
                              "stock": $lookup("stock", sku, 0),
                              "amount": qty * price}],
  "customer": $lookup("customers", order.customer),
  "total": $sum(order.items.item.(qty * price))
}"""
TARGET = {"type": "object", "required": ["orderId", "region", "total"],
          "properties": {"total": {"type": "number"}}}


def test_xml_and_csv_through_schemas_lookups_and_env(api_server, tenant, tmp_path):
    settings = Settings.from_env()
    target = RecordingTarget()
    target.documents["/customers/Ana"] = {"data": {"name": "Ana Costa", "tier": "gold"}}
    stock_db = tmp_path / "stock.db"
    with sqlite3.connect(stock_db) as db:
        db.execute("create table stock (sku text primary key, units integer)")
        db.executemany("insert into stock values (?, ?)", [("X", 40), ("Y", 7)])
    tenant_id, key = tenant
    client = httpx.Client(base_url=api_server, timeout=30,
                          headers={"X-API-Key": key, "X-Tenant-Id": tenant_id})

    def ok(response: httpx.Response, status: int = 201) -> dict:
        assert response.status_code == status, response.text
        return response.json() if response.content else {}

    try:
        ok(client.post("/v1/schemas", json={"name": "orders", "format": "XSD",
                                            "definition": ORDER_XSD}))
        ok(client.put("/v1/environments/DEV/variables/REGION", json={"value": "eu-west"}), 200)
        ok(client.post("/v1/lookups", json={"name": "products", "type": "STATIC",
                                            "rows": {"X": "Widget", "Y": "Gadget"}}))
        ok(client.post("/v1/connectors", json={"name": "erp", "type": "HTTP",
                                               "config": {"url": target.url}}))
        crm = ok(client.post("/v1/connectors", json={
            "name": "crm", "type": "HTTP", "config": {"url": target.url.rsplit("/", 1)[0]}}))
        warehouse = ok(client.post("/v1/connectors", json={
            "name": "warehouse", "type": "JDBC",
            "config": {"dialect": "sqlite", "database": str(stock_db)}}))
        ok(client.post("/v1/lookups", json={"name": "customers", "type": "HTTP", "config": {
            "connectorId": crm["id"], "urlTemplate": "/customers/{key}",
            "responsePath": "data.name"}}))
        ok(client.post("/v1/lookups", json={"name": "stock", "type": "DB", "config": {
            "connectorId": warehouse["id"],
            "query": "select units from stock where sku = :key"}}))
        trf = ok(client.post("/v1/transformations", json={
            "name": "orders to erp", "sourceSchema": "orders", "targetSchema": TARGET,
            "expression": MAPPING}))
        integration = ok(client.post("/v1/integrations", json={
            "name": "orders", "targetConnectorId": "erp", "transformationId": trf["id"]}))
        messages_url = f"/v1/integrations/{integration['id']}/messages"

        accepted = [ok(client.post(messages_url, content=_order(f"A{n}"),
                                   headers={"Content-Type": "application/xml"}), 202)
                    for n in range(3)]
        bad = ok(client.post(messages_url, content=_order("BAD", qty="-1", paid="maybe"),
                             headers={"Content-Type": "application/xml"}), 202)
        wait_for(lambda: count_messages(settings, "DELIVERED") == 3
                 and count_messages(settings, "DEAD_LETTERED") == 1, 90,
                 "3 orders delivered and the bad one dead-lettered")

        bodies = sorted((r["body"] for r in target.received), key=lambda b: b["orderId"])
        assert [b["orderId"] for b in bodies] == ["A0", "A1", "A2"]
        assert bodies[0] == {"orderId": "A0", "region": "eu-west", "total": 24.0,
                             "customer": "Ana Costa", "lines": [
                                 {"sku": "X", "name": "Widget", "stock": 40, "amount": 19.0},
                                 {"sku": "Y", "name": "Gadget", "stock": 7, "amount": 5.0}]}
        delivered = ok(client.get(f"/v1/messages/{accepted[0]['messageId']}"), 200)
        assert delivered["status"] == "DELIVERED"

        dead = ok(client.get(f"/v1/messages/{bad['messageId']}"), 200)
        assert dead["status"] == "DEAD_LETTERED"
        assert dead["lastError"]["code"] == "DECODE_FAILED"
        failures = json.loads(dead["lastError"]["message"])
        pointers = [f["pointer"] for f in failures]
        assert len(pointers) == 2 and any("qty" in p for p in pointers)
        assert any("paid" in p for p in pointers)

        # CSV: one message per row, typed by an inline source schema.
        csv_trf = ok(client.post("/v1/transformations", json={
            "name": "csv contacts",
            "sourceSchema": {"type": "object", "properties": {
                "nome": {"type": "string"}, "idade": {"type": ["integer", "null"]},
                "ativo": {"type": "boolean"}}},
            "expression": '{"name": nome, "age": idade, "active": ativo, '
                          '"product": $lookup("products", "X")}'}))
        csv_integration = ok(client.post("/v1/integrations", json={
            "name": "contacts", "targetConnectorId": "erp", "transformationId": csv_trf["id"]}))
        csv_url = f"/v1/integrations/{csv_integration['id']}/messages"
        csv = b"nome,idade,ativo\nAna,31,true\nRui,,false\n"
        answer = ok(client.post(csv_url, content=csv, headers={"Content-Type": "text/csv"}), 202)
        assert answer["count"] == 2 and len(answer["messageIds"]) == 2
        wait_for(lambda: count_messages(settings, "DELIVERED") == 5, 60, "the two CSV rows")
        rows = [r["body"] for r in target.received if "name" in r["body"]]
        assert sorted(rows, key=lambda r: r["name"]) == [
            {"name": "Ana", "age": 31, "active": True, "product": "Widget"},
            {"name": "Rui", "age": None, "active": False, "product": "Widget"}]
        refused = client.post(csv_url, content=b"nome,idade,ativo\nZe,old,true\n",
                              headers={"Content-Type": "text/csv"})
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["row"] == 2  # file line: header is 1
    finally:
        client.close()
        target.close()
