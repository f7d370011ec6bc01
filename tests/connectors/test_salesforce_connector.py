"""The Salesforce connector against the local Salesforce emulator (HTTPS on loopback).

No real org is reachable from here: ``tests/emulators/salesforce.py`` answers the login,
REST, sObject Collections and Bulk API 2.0 calls as Salesforce's public reference describes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrationos.connectors import registry
from integrationos.connectors.base import ConnectorError, OutboundMessage, SourceRecord
from integrationos.connectors.salesforce import SalesforceConnector
from tests.emulators.salesforce import SalesforceEmulator

Connect = Callable[..., SalesforceConnector]
UPSERT = {"sobject": "Contact", "operation": "upsert", "externalIdField": "External_Id__c"}


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceEmulator]:
    emulator = SalesforceEmulator(tmp_path / "tls").start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_file)  # trust its self-signed cert
    yield emulator
    emulator.stop()


@pytest.fixture
def password(emulator: SalesforceEmulator) -> dict[str, str]:
    return {"username": emulator.username, "password": emulator.password,
            "securityToken": emulator.security_token}


@pytest.fixture
def connect(emulator: SalesforceEmulator, password: dict[str, str]) -> Iterator[Connect]:
    """Builds connectors (through the registry, so the specs are checked) on the emulator."""
    built: list[SalesforceConnector] = []

    def connect(credentials: dict[str, Any] | None = None, **config: Any) -> SalesforceConnector:
        connector = registry.build("SALESFORCE", {"loginUrl": emulator.url, **config},
                                   password if credentials is None else credentials)
        assert isinstance(connector, SalesforceConnector)
        built.append(connector)
        return connector

    yield connect
    for connector in built:
        asyncio.run(connector.close())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def message(payload: Any) -> OutboundMessage:
    return OutboundMessage("msg_1", "idem_1", "acme", "int_1", None, payload)


def write(connector: SalesforceConnector, payload: Any) -> str:
    return asyncio.run(connector.write(message(payload))).detail


def failure(connector: SalesforceConnector, payload: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        asyncio.run(connector.write(message(payload)))
    return caught.value


def contacts(emulator: SalesforceEmulator, field: str = "External_Id__c") -> list[Any]:
    return sorted(str(r[field]) for r in emulator.records("Contact"))


# --- authentication --------------------------------------------------------------------

def test_password_flow_sends_password_and_security_token(emulator, connect):
    detail = write(connect(sobject="Contact"), {"LastName": "Lovelace"})
    assert detail.startswith("created 003")
    assert emulator.logins == ["password"]
    assert contacts(emulator, "LastName") == ["Lovelace"]


def test_client_credentials_flow(emulator, connect):
    connector = connect({"clientId": emulator.client_id, "clientSecret": emulator.client_secret},
                        sobject="Contact")
    write(connector, {"LastName": "Hopper"})
    assert emulator.logins == ["client_credentials"]


@pytest.mark.filterwarnings("ignore:(?s).*self-authorize")  # simple-salesforce's hint
def test_jwt_bearer_flow_signs_an_assertion_for_the_user(emulator, connect, rsa_key):
    emulator.jwt_public_key = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    connector = connect({"clientId": emulator.client_id, "username": emulator.username,
                         "privateKey": pem}, sobject="Contact")
    write(connector, {"LastName": "Turing"})
    assert emulator.logins == ["jwt"]
    stranger = connect({"clientId": emulator.client_id, "username": "someone@else",
                        "privateKey": pem}, sobject="Contact")
    refused = failure(stranger, {"LastName": "X"})
    assert (refused.code, refused.retryable) == ("AUTHENTICATION", False)


def test_unusable_private_key_is_a_permanent_authentication_error(emulator, connect):
    connector = connect({"clientId": emulator.client_id, "username": emulator.username,
                         "privateKey": "not a key"}, sobject="Contact")
    error = failure(connector, {"LastName": "X"})
    assert (error.code, error.retryable) == ("AUTHENTICATION", False)
    assert "INVALID_PRIVATE_KEY" in error.message and "not a key" not in error.message


def test_credentials_must_name_exactly_one_flow():
    both = {"username": "u", "password": "p", "clientId": "c", "clientSecret": "s"}
    assert registry.validate_config("SALESFORCE", {}, both)
    assert registry.validate_config("SALESFORCE", {}, {"clientSecret": "s"})  # no clientId
    upsert_without_field = {"sobject": "Contact", "operation": "upsert"}
    violations = registry.validate_config("SALESFORCE", upsert_without_field, {"clientId": "c",
                                                                               "clientSecret": "s"})
    assert [v["field"] for v in violations] == ["/config/externalIdField"]


# --- target operations -----------------------------------------------------------------

def test_upsert_by_external_id_writes_each_record_once(emulator, connect):
    connector = connect(**UPSERT)
    assert "created" in write(connector, {"External_Id__c": "c-1", "LastName": "Old"})
    assert "updated" in write(connector, {"External_Id__c": "c-1", "LastName": "New"})
    [record] = emulator.records("Contact")
    assert (record["External_Id__c"], record["LastName"]) == ("c-1", "New")


def test_update_needs_the_record_id(emulator, connect):
    created = write(connect(sobject="Contact"), {"LastName": "Before"}).removeprefix("created ")
    updater = connect(sobject="Contact", operation="update")
    assert write(updater, {"Id": created, "Email": "a@example.com"}) == f"updated {created}"
    assert contacts(emulator, "Email") == ["a@example.com"]
    missing = failure(updater, {"Email": "b@example.com"})
    assert (missing.code, missing.retryable) == ("MISSING_ID", False)


def test_small_array_is_saved_all_or_none_through_sobject_collections(emulator, connect):
    connector = connect(**UPSERT, bulkThreshold=10)
    rejected = failure(connector, [{"External_Id__c": "a", "LastName": "A"},
                                   {"External_Id__c": "b"}])
    assert (rejected.code, rejected.retryable) == ("REQUIRED_FIELD_MISSING", False)
    assert emulator.records("Contact") == []  # rolled back as a whole
    detail = write(connector, [{"External_Id__c": k, "LastName": k} for k in "abc"])
    assert detail == "3 records upserted (sObject Collections)"
    assert contacts(emulator) == ["a", "b", "c"]


def test_array_at_the_threshold_goes_through_a_bulk_api_2_job(emulator, connect):
    connector = connect(**UPSERT, bulkThreshold=3)
    rows = [{"External_Id__c": f"b{n}", "LastName": f"L{n}", "Email": None} for n in range(3)]
    assert "Bulk API 2.0 job 750" in write(connector, rows)
    write(connector, rows)  # the same batch again: upsert leaves one record per external id
    assert contacts(emulator) == ["b0", "b1", "b2"]


def test_bulk_create_with_refused_rows_is_not_retried(emulator, connect):
    connector = connect(sobject="Contact", bulkThreshold=2)
    error = failure(connector, [{"LastName": "Kept"}, {"FirstName": "No last name"}])
    assert (error.code, error.retryable) == ("REQUIRED_FIELD_MISSING", False)
    assert "1 of 2 records rejected; 1 written" in error.message
    assert contacts(emulator, "LastName") == ["Kept"]


# --- error classification --------------------------------------------------------------

@pytest.mark.parametrize(("payload", "code"), [
    ({"LastName": "X", "Nickname__c": "x"}, "INVALID_FIELD"),
    ({"FirstName": "No last name"}, "REQUIRED_FIELD_MISSING"),
    ({"LastName": "Twin", "External_Id__c": "dup"}, "DUPLICATE_VALUE"),
])
def test_data_errors_are_permanent_with_the_salesforce_code(emulator, connect, payload, code):
    connector = connect(sobject="Contact")
    write(connector, {"LastName": "First", "External_Id__c": "dup"})
    error = failure(connector, payload)
    assert (error.code, error.retryable) == (code, False)
    assert code in error.excerpt


@pytest.mark.parametrize(("status", "code"), [
    (403, "REQUEST_LIMIT_EXCEEDED"), (503, "SERVER_UNAVAILABLE"), (500, "UNKNOWN_EXCEPTION"),
])
def test_limits_and_server_faults_are_retryable(emulator, connect, status, code):
    connector = connect(sobject="Contact")
    emulator.fail_next(status, code, "try later")
    error = failure(connector, {"LastName": "X"})
    assert (error.code, error.retryable) == (code, True)
    assert write(connector, {"LastName": "X"}).startswith("created")  # and it passes later


def test_timeout_is_retryable(emulator, connect):
    connector = connect(sobject="Contact", timeoutMs=300)
    asyncio.run(connector.test())  # log in before the server slows down
    emulator.delay = 1.0
    error = failure(connector, {"LastName": "Slow"})
    assert (error.code, error.retryable) == ("TIMEOUT", True)


def test_expired_session_logs_in_again_once_for_concurrent_writes(emulator, connect):
    connector = connect(sobject="Contact")
    write(connector, {"LastName": "Before"})
    emulator.expire_sessions()

    async def five() -> None:
        await asyncio.gather(*(connector.write(message({"LastName": f"After{n}"}))
                               for n in range(5)))

    asyncio.run(five())
    assert emulator.logins == ["password", "password"]
    assert len(emulator.records("Contact")) == 6


def test_expired_session_with_a_refused_login_is_permanent(emulator, connect):
    connector = connect(sobject="Contact")
    write(connector, {"LastName": "Before"})
    emulator.expire_sessions()
    emulator.password = "rotated-by-an-admin"
    error = failure(connector, {"LastName": "After"})
    assert (error.code, error.retryable) == ("INVALID_SESSION_ID", False)
    assert "INVALID_LOGIN" in error.message


def test_session_refused_again_right_after_login_is_permanent(emulator, connect):
    connector = connect(sobject="Contact")
    emulator.fail_next(401, "INVALID_SESSION_ID", "Session expired or invalid", times=2)
    error = failure(connector, {"LastName": "X"})
    assert (error.code, error.retryable) == ("INVALID_SESSION_ID", False)
    assert emulator.logins == ["password", "password"]


def test_instance_url_overrides_the_instance_named_at_login(emulator, connect):
    emulator.advertised_url = "https://127.0.0.1:9"  # nothing listens there
    connector = connect(sobject="Contact", instanceUrl=emulator.url)
    assert write(connector, {"LastName": "Routed"}).startswith("created")


# --- source ----------------------------------------------------------------------------

def seed(emulator: SalesforceEmulator, names: list[str], second: int) -> None:
    emulator.org.clock = lambda: datetime(2025, 3, 1, 12, 0, second, tzinfo=UTC)
    for name in names:
        emulator.org.create("Contact", {"LastName": name})


def poll(connector: SalesforceConnector, max_records: int = 100) -> list[SourceRecord]:
    return asyncio.run(connector.poll(max_records, 0.05))


def names(records: list[SourceRecord]) -> list[str]:
    return [json.loads(r.value)["LastName"] for r in records]


def test_soql_polling_pages_through_equal_stamps_without_skips_or_rereads(emulator, connect):
    seed(emulator, ["a", "b", "c", "d", "e"], second=1)  # five records, one SystemModstamp
    connector = connect(soql="SELECT LastName FROM Contact WHERE LastName != 'e'",
                        pollIntervalSeconds=60)
    first = poll(connector, 2)
    assert names(first) == ["a", "b"]
    assert names(poll(connector, 2)) == ["a", "b"]  # not committed: read again
    asyncio.run(connector.commit(first))
    second = poll(connector, 2)
    assert names(second) == ["c", "d"]
    record = second[0]
    assert record.key == record.position.split("/")[1].split("@")[0].encode()
    assert record.position == f"Contact/{record.key.decode()}@2025-03-01T12:00:01.000+0000"
    assert json.loads(record.checkpoint or "") == {
        "systemModstamp": "2025-03-01T12:00:01.000+0000", "id": record.key.decode()}
    asyncio.run(connector.commit(second))
    assert poll(connector, 2) == []  # nothing left ('e' is filtered out): a short page
    seed(emulator, ["f"], second=2)
    assert poll(connector, 2) == []  # ... so the next query waits for pollIntervalSeconds


def test_restore_resumes_after_the_checkpoint_and_sees_later_changes(emulator, connect):
    seed(emulator, ["a", "b"], second=1)
    first = connect(soql="SELECT LastName FROM Contact")
    read = poll(first)
    assert names(read) == ["a", "b"]
    seed(emulator, ["c"], second=1)  # same second, later Id: still ahead of the cursor
    emulator.org.clock = lambda: datetime(2025, 3, 1, 12, 0, 2, tzinfo=UTC)
    emulator.org.update("Contact", json.loads(read[0].value)["Id"], {"LastName": "a2"})
    restarted = connect(soql="SELECT LastName FROM Contact")
    restarted.restore(read[-1].checkpoint)
    assert names(poll(restarted)) == ["c", "a2"]


def test_unusable_soql_or_checkpoint_is_permanent(connect):
    ordered = connect(soql="SELECT Id FROM Contact WHERE LastName = 'x' ORDER BY Name")
    with pytest.raises(ConnectorError) as caught:
        poll(ordered)
    assert (caught.value.code, caught.value.retryable) == ("BAD_SOQL", False)
    restored = connect(soql="SELECT Id FROM Contact")
    restored.restore("{not json")
    with pytest.raises(ConnectorError) as caught:
        poll(restored)
    assert caught.value.code == "BAD_CHECKPOINT"


# --- health ----------------------------------------------------------------------------

def test_health_up_describes_the_object(connect):
    report = asyncio.run(connect(sobject="Contact").test())
    assert report.status == "UP"
    assert "Contact" in report.detail


def test_health_down_on_a_wrong_password_says_authentication(emulator, connect, password):
    wrong = {**password, "password": "not-the-password"}
    report = asyncio.run(connect(wrong, sobject="Contact").test())
    assert report.status == "DOWN"
    assert "authentication failed" in report.detail and "INVALID_LOGIN" in report.detail
    assert "not-the-password" not in report.detail


def test_health_down_when_salesforce_is_unreachable(connect, password):
    report = asyncio.run(connect(loginUrl="https://127.0.0.1:9", sobject="Contact").test(2))
    assert (report.status, report.detail) == ("DOWN", "unreachable: connection refused")
