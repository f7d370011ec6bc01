"""The seed's Python quickstarts, as copied into sdks/python/examples/, run to completion
against the live platform (real broker, worker and API) and print the seed's lines.

The example setup is what an operator does before a user runs the seed's code: a tenant
(`integrationos tenants create`), and a Salesforce connector named "salesforce-prod" (the
seed's `target_connector_id`; the API takes a connector name there) on the local
Salesforce emulator. The SFTP connector the example creates points at the test OpenSSH
server, so its health check is really UP.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import wait_for

SDK = Path(__file__).resolve().parents[2] / "sdks" / "python"
SEED_OUTPUT = {"FirstName": "João", "LastName": "Silva", "Email": "j@ex.pt"}


def _run(example: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run([sys.executable, str(SDK / "examples" / example)],
                          env={**os.environ, **env, "PYTHONPATH": str(SDK / "src"),
                               "PYTHONIOENCODING": "utf-8"},
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_seeds_quickstarts_run_as_written(salesforce, sshd, api_server, tenant):
    from integration_platform import IntegrationPlatform

    tenant_id, key = tenant
    client_env = {"INTEGRATION_PLATFORM_API_KEY": key,
                  "INTEGRATION_PLATFORM_TENANT_ID": tenant_id,
                  "INTEGRATION_PLATFORM_BASE_URL": api_server}
    client = IntegrationPlatform(api_key=key, tenant_id=tenant_id, base_url=api_server)
    # The example setup: the Salesforce org the seed calls "salesforce-prod".
    target = client.connectors.create(
        name="salesforce-prod", type="SALESFORCE",
        config={"loginUrl": salesforce.url, "sobject": "Contact"},
        credentials={"username": salesforce.username, "password": salesforce.password,
                     "securityToken": salesforce.security_token})
    assert client.connectors.test(target.id).status == "UP"
    outbound = sshd.directory("outbound")

    lines = _run("quick-start.py", {
        **client_env, "SFTP_HOST": sshd.host, "SFTP_PORT": str(sshd.port),
        "SFTP_REMOTE_PATH": str(outbound), "SFTP_HOST_KEY": sshd.host_key,
        "SFTP_USERNAME": sshd.username, "SFTP_PASSWORD": sshd.password})
    assert len(lines) == 3, lines
    assert re.fullmatch(r"Connector: UP \(\d+ms\)", lines[0])
    assert re.fullmatch(r"Result: SUCCESS in \d+(\.\d+)?ms", lines[1])
    assert ast.literal_eval(lines[2]) == SEED_OUTPUT  # print() of the Contact dict
    assert sshd.password not in "\n".join(lines)

    # The five-minute quickstart: "sftp" and "salesforce" name the tenant's only
    # connector of each type (the two above); no transformation, so the payload passes.
    lines = _run("five-minute-quickstart.py", client_env)
    assert len(lines) == 2, lines
    assert re.fullmatch(r"Result: SUCCESS in \d+(\.\d+)?ms", lines[0])
    assert ast.literal_eval(lines[1]) == {"nome_completo": "João Silva", "email": "j@ex.pt"}

    # What the quickstart built really runs: a message through it lands in Salesforce.
    flows = {i.name: i for i in client.integrations.list()}
    assert set(flows) == {"SFTP → Salesforce Daily Sync", "SFTP Production → salesforce-prod"}
    flow = flows["SFTP → Salesforce Daily Sync"]
    assert (flow.target_connector_id, flow.status) == (target.id, "ACTIVE")
    accepted = client.messages.send(flow.id, {"nome_completo": "Ana Costa",
                                              "email": "ana@ex.pt"})

    def delivered() -> bool:
        from integration_platform import NotFoundError

        try:
            return client.messages.get(accepted.message_id).status == "DELIVERED"
        except NotFoundError:  # not yet recorded by the worker
            return False

    wait_for(delivered, 60, "the quickstart's message delivered")
    contacts = salesforce.records("Contact")
    assert [(c["FirstName"], c["LastName"], c["Email"]) for c in contacts] == [
        ("Ana", "Costa", "ana@ex.pt")]
    client.close()
