"""The registry: lazy lookup, descriptions for the API, and spec validation."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from integrationos.connectors import registry
from integrationos.connectors.base import Connector
from integrationos.connectors.http import HttpConnector
from integrationos.connectors.registry import InvalidConnectorConfig, UnknownConnectorType

SECRET = "hunter2-very-secret"


def fields(violations: list[dict[str, str]]) -> set[str]:
    return {v["field"] for v in violations}


def test_lists_the_registered_types() -> None:
    assert registry.connector_types() == ["HTTP", "JDBC", "KAFKA", "SALESFORCE", "SFTP", "SMTP"]


@pytest.mark.parametrize("type_name", ["HTTP", "JDBC", "KAFKA", "SALESFORCE", "SFTP", "SMTP"])
def test_every_type_resolves_and_describes_itself(type_name: str) -> None:
    cls = registry.connector_class(type_name)
    assert issubclass(cls, Connector)
    assert cls.type_name == type_name
    described = registry.describe(type_name)
    assert set(described) == {"type", "displayName", "roles", "configSpec", "credentialsSpec"}
    assert described["type"] == type_name
    Draft202012Validator.check_schema(described["configSpec"])
    Draft202012Validator.check_schema(described["credentialsSpec"])


def test_roles_are_listed_sorted() -> None:
    assert registry.describe("HTTP")["roles"] == ["source", "target"]
    assert registry.describe("SFTP")["roles"] == ["source", "target"]
    assert registry.describe("SMTP")["roles"] == ["target"]


def test_unknown_type_is_a_value_error_naming_the_known_ones() -> None:
    known = "known: HTTP, JDBC, KAFKA, SALESFORCE, SFTP, SMTP"
    with pytest.raises(UnknownConnectorType, match=known) as caught:
        registry.connector_class("FTP")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(UnknownConnectorType):
        registry.validate_config("FTP", {}, {})


def test_valid_config_has_no_violations() -> None:
    config = {"url": "https://example.com/hook", "method": "PUT", "timeoutMs": 500}
    assert registry.validate_config("HTTP", config, {"bearerToken": "t"}) == []
    assert registry.validate_config("KAFKA", {"topic": "orders"}, {}) == []
    sftp_credentials = {"username": "ios", "password": "p"}
    assert registry.validate_config("SFTP", {"host": "h"}, sftp_credentials) == []


def test_reports_every_violation_with_a_json_pointer() -> None:
    config = {"url": "ftp://example.com", "method": "GET", "timeoutMs": 5, "bogus": 1}
    violations = registry.validate_config("HTTP", config, {})
    assert fields(violations) == {"/config/url", "/config/method", "/config/timeoutMs",
                                  "/config/bogus"}
    assert all(v["message"] for v in violations)


def test_missing_required_fields_point_at_the_field() -> None:
    violations = registry.validate_config("SFTP", {}, {"password": "x"})
    assert fields(violations) == {"/config/host", "/credentials/username"}


def test_pointer_escapes_slash_and_tilde() -> None:
    violations = registry.validate_config("KAFKA", {"topic": "t", "a/b~c": 1}, {})
    assert fields(violations) == {"/config/a~1b~0c"}


def test_kafka_sasl_needs_a_mechanism() -> None:
    config = {"topic": "t", "securityProtocol": "SASL_SSL"}
    assert fields(registry.validate_config("KAFKA", config, {})) == {"/config/saslMechanism"}


def test_credential_messages_never_echo_the_value() -> None:
    cases = [
        ("HTTP", {}, {"username": "u", "password": SECRET, "bearerToken": SECRET}),
        ("SFTP", {"host": "h"}, {"username": "u", "password": SECRET, "privateKey": SECRET}),
        ("KAFKA", {"topic": "t"}, {"username": ["u"], "password": {"v": SECRET}}),
    ]
    for type_name, config, credentials in cases:
        violations = registry.validate_config(type_name, config, credentials)
        assert violations, type_name
        assert all(v["field"].startswith("/credentials") for v in violations)
        assert not any(SECRET in v["message"] for v in violations)


def test_role_requirements() -> None:
    assert registry.validate_config("HTTP", {}, {}, role="source") == []
    target = registry.validate_config("HTTP", {}, {}, role="target")
    assert fields(target) == {"/config/url"}
    smtp = registry.validate_config("SMTP", {"host": "h", "from": "a@b", "to": '"c@d"',
                                             "subject": '"s"', "text": '"t"'}, {},
                                    role="source")
    assert fields(smtp) == {"/role"}


def test_build_returns_a_configured_connector() -> None:
    connector = registry.build("HTTP", {"url": "http://127.0.0.1:1/x"}, {})
    assert isinstance(connector, HttpConnector)
    assert connector.config["url"] == "http://127.0.0.1:1/x"


def test_build_refuses_invalid_config_without_leaking_secrets() -> None:
    with pytest.raises(InvalidConnectorConfig) as caught:
        registry.build("HTTP", {"timeoutMs": 1}, {"bearerToken": 42, "password": SECRET})
    assert fields(caught.value.violations) >= {"/config/timeoutMs", "/credentials/bearerToken"}
    assert SECRET not in str(caught.value)
