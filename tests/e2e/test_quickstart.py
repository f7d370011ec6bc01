"""The seed's quickstart end to end on the real broker, worker and API, then 2,000 messages
(1,000 over HTTP, 1,000 from a Kafka producer) to a real HTTP target and a Kafka target."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from integrationos.settings import Settings
from integrationos.topics.catalog import ALL_TOPICS
from tests.support import RecordingTarget, ingest, wait_for

SEED_EXPRESSION = """
    {
        "FirstName": $substringBefore($.nome_completo, " "),
        "LastName": $substringAfter($.nome_completo, " "),
        "Email": $.email,
        "Phone": $.telefone,
        "IsActive__c": $.ativo
    }
    """


def _client(base: str, tenant: tuple[str, str]) -> httpx.Client:
    tenant_id, key = tenant
    return httpx.Client(base_url=base, timeout=30,
                        headers={"X-API-Key": key, "X-Tenant-Id": tenant_id})


def _post(client: httpx.Client, path: str, body: dict, status: int = 201) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()


async def _send_over_http(base: str, tenant: tuple[str, str], integration_id: str,
                          payloads: list[dict]) -> list[str]:
    tenant_id, key = tenant
    headers = {"X-API-Key": key, "X-Tenant-Id": tenant_id}
    limit = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        async def send(payload: dict) -> str:
            async with limit:
                response = await client.post(f"/v1/integrations/{integration_id}/messages",
                                             json=payload)
            assert response.status_code == 202, response.text
            return response.json()["messageId"]

        return await asyncio.gather(*(send(p) for p in payloads))


SECRET = "pw-Zq81-never-in-clear"


def _all_platform_records(settings: Settings) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": "secret-scan", "auto.offset.reset": "earliest"})
    topics = [spec.name(settings.topic_prefix) for spec in ALL_TOPICS]
    high = sum(consumer.get_watermark_offsets(TopicPartition(t, p), 10)[1]
               for t in topics
               for p in consumer.list_topics(t, timeout=10).topics[t].partitions)
    consumer.subscribe(topics)
    found: list[bytes] = []
    wait_for(lambda: found.extend(
        (m.value() or b"") + b"".join(v or b"" for _, v in (m.headers() or []))
        for m in consumer.consume(1000, 1.0) if not m.error()) or len(found) >= high,
        60, "every platform record")
    consumer.close()
    return found


def test_seed_quickstart_then_2000_messages_to_http_and_kafka_targets(api_server, tenant,
                                                                     platform_env):
    settings = Settings.from_env()
    http_target = RecordingTarget()
    out_topic = f"{settings.topic_prefix}.contacts-out"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics(
        [NewTopic(out_topic, num_partitions=3, replication_factor=1)])[out_topic].result(30)
    client = _client(api_server, tenant)
    try:
        # 1. The seed's cURL step 1, as written.
        sftp = _post(client, "/v1/connectors", {
            "name": "SFTP Production", "type": "SFTP",
            "config": {"host": "sftp.empresa.pt", "port": 22, "remotePath": "/outbound"},
            "credentials": {"username": "integrations", "password": "***"},
        })
        assert sftp["credentials"] == {"username": "********", "password": "********"}
        with_secret = _post(client, "/v1/connectors", {
            "name": "SFTP Secret", "type": "SFTP", "config": {"host": "127.0.0.1", "port": 1},
            "credentials": {"username": "integrations", "password": SECRET},
        })
        assert SECRET not in json.dumps(with_secret)
        assert SECRET not in client.get(f"/v1/connectors/{with_secret['id']}").text
        assert SECRET not in client.get("/v1/connectors").text
        assert _post(client, f"/v1/connectors/{with_secret['id']}/test", {},
                     status=200)["status"] == "DOWN"
        # 2. Test it: that host does not resolve here, and the answer says so.
        health = _post(client, f"/v1/connectors/{sftp['id']}/test", {}, status=200)
        assert health["status"] == "DOWN" and isinstance(health["latencyMs"], int)
        assert "DNS" in health["detail"]

        # Targets: the quickstart's "salesforce-prod" is here a real local HTTP endpoint.
        _post(client, "/v1/connectors", {"name": "salesforce-prod", "type": "HTTP",
                                          "config": {"url": http_target.url}})
        kafka_target = _post(client, "/v1/connectors", {"name": "contacts-topic",
                                                        "type": "KAFKA",
                                                        "config": {"topic": out_topic}})
        transform = _post(client, "/v1/transformations", {
            "name": "CSV to Salesforce Contact", "sourceSchema": "csv-contact-v1",
            "expression": SEED_EXPRESSION,
        })
        to_http = _post(client, "/v1/integrations", {
            "name": "SFTP → Salesforce Daily Sync", "environment": "DEV",
            "sourceConnectorId": sftp["id"], "targetConnectorId": "salesforce-prod",
            "transformationId": transform["id"], "errorStrategy": "RETRY_3_DLQ",
        })
        to_kafka = _post(client, "/v1/integrations", {
            "name": "SFTP → Kafka", "environment": "DEV", "sourceConnectorId": sftp["id"],
            "targetConnectorId": kafka_target["id"], "transformationId": transform["id"],
            "errorStrategy": "RETRY_3_DLQ",
        })
        # 3. The sandbox, with the seed's payload.
        result = _post(client, "/v1/sandbox/execute", {
            "integrationId": to_http["id"],
            "payload": {"nome_completo": "João Silva", "email": "j@ex.pt"},
        }, status=200)
        assert result["status"] == "SUCCESS"
        assert result["outputPayload"] == {"FirstName": "João", "LastName": "Silva",
                                           "Email": "j@ex.pt"}
        assert isinstance(result["durationMs"], int | float) and result["errors"] == []
        assert http_target.received == []  # the sandbox never touches the target

        # 1,000 over HTTP and 1,000 from a Kafka producer, half to each integration.
        def people(tag: str) -> list[dict]:
            return [{"nome_completo": f"{tag}{n} Silva", "email": f"{tag}{n}@ex.pt"}
                    for n in range(500)]

        asyncio.run(_send_over_http(api_server, tenant, to_http["id"], people("hh")))
        asyncio.run(_send_over_http(api_server, tenant, to_kafka["id"], people("hk")))
        tenant_id = tenant[0]
        ingest(settings, [json.dumps(p).encode() for p in people("kh")],
               integration=to_http["id"], tenant=tenant_id)
        ingest(settings, [json.dumps(p).encode() for p in people("kk")],
               integration=to_kafka["id"], tenant=tenant_id)

        def delivered(integration_id: str) -> int:
            return client.get(f"/v1/integrations/{integration_id}/status").json()["delivered"]

        wait_for(lambda: delivered(to_http["id"]) == 1000 and delivered(to_kafka["id"]) == 1000,
                 180, "2,000 deliveries in the status projection")
        statuses = [client.get(f"/v1/integrations/{i}/status").json()
                    for i in (to_http["id"], to_kafka["id"])]
        assert sum(s["total"] for s in statuses) == 2000
        assert sum(s["delivered"] for s in statuses) == 2000

        emails = sorted(r["body"]["Email"] for r in http_target.received)
        assert emails == sorted(p["email"] for p in people("hh") + people("kh"))
        assert all(r["body"]["LastName"] == "Silva" for r in http_target.received)

        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                             "group.id": "e2e-check", "auto.offset.reset": "earliest"})
        consumer.subscribe([out_topic])
        seen: list[dict] = []
        wait_for(lambda: seen.extend(json.loads(m.value()) for m in consumer.consume(500, 1.0)
                                     if not m.error()) or len(seen) >= 1000,
                 60, "1,000 records on the Kafka target topic")
        consumer.close()
        assert sorted(r["Email"] for r in seen) == sorted(
            p["email"] for p in people("hk") + people("kk"))

        one = client.get(f"/v1/messages/{http_target.received[0]['idempotency_key']}").json()
        assert one["status"] == "DELIVERED"
        assert [e["type"] for e in one["events"]] == [
            "message.received", "message.transformed", "message.delivered"]
        # The secret is nowhere in clear: not in any record, table or log of the platform.
        assert not [r for r in _all_platform_records(settings) if SECRET.encode() in r]
        data_dir = Path(platform_env["IOS_DATA_DIR"])
        files = [p for p in data_dir.rglob("*") if p.is_file()]
        assert any(p.suffix == ".db" for p in files) and any(p.suffix == ".log" for p in files)
        assert [p for p in files if SECRET.encode() in p.read_bytes()] == []
    finally:
        client.close()
        http_target.close()
