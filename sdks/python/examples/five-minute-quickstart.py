import os

from integration_platform import IntegrationPlatform

payload = {"nome_completo": "João Silva", "email": "j@ex.pt"}

# 2. Authenticate
client = IntegrationPlatform(api_key=os.environ["INTEGRATION_PLATFORM_API_KEY"])

# 3. Create your first integration
flow = client.flows.create(source="sftp", target="salesforce")

# 4. Send a test message
result = client.sandbox.execute(flow.id, payload)

print(f"Result: {result.status} in {result.duration_ms}ms")
print(result.output_payload)
