import os

from integration_platform import IntegrationPlatform

# 1. Initialise client
client = IntegrationPlatform(
    api_key=os.environ["INTEGRATION_PLATFORM_API_KEY"],
    tenant_id=os.environ["INTEGRATION_PLATFORM_TENANT_ID"]
)

# 2. Create SFTP connector
sftp = client.connectors.create(
    name="SFTP Production",
    type="SFTP",
    config={
        "host": os.environ["SFTP_HOST"],
        "port": int(os.environ["SFTP_PORT"]),
        "remotePath": os.environ["SFTP_REMOTE_PATH"],
        "hostKey": os.environ["SFTP_HOST_KEY"]
    },
    credentials={
        "username": os.environ["SFTP_USERNAME"],
        "password": os.environ["SFTP_PASSWORD"]
    }
)

# 3. Test connector health
health = client.connectors.test(sftp.id)
print(f"Connector: {health.status} ({health.latency_ms}ms)")

# 4. Create transformation
transform = client.transformations.create(
    name="CSV to Salesforce Contact",
    source_schema="csv-contact-v1",
    expression="""
    {
        "FirstName": $substringBefore($.nome_completo, " "),
        "LastName": $substringAfter($.nome_completo, " "),
        "Email": $.email,
        "Phone": $.telefone,
        "IsActive__c": $.ativo
    }
    """
)

# 5. Create integration flow
flow = client.integrations.create(
    name="SFTP → Salesforce Daily Sync",
    environment="DEV",
    source_connector_id=sftp.id,
    target_connector_id="salesforce-prod",
    transformation_id=transform.id,
    error_strategy="RETRY_3_DLQ"
)

# 6. Test in sandbox
result = client.sandbox.execute(
    integration_id=flow.id,
    payload={"nome_completo": "João Silva", "email": "j@ex.pt"}
)

print(f"Result: {result.status} in {result.duration_ms}ms")
print(result.output_payload)
