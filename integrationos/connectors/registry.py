"""Which connector types exist, and how to validate and build one by its type name.

Types are registered as ``"module:Class"`` strings and imported on first use, so listing
the types (or starting the API) never pulls in paramiko or an HTTP stack it does not need,
and a broken optional dependency only breaks its own type.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from integrationos.connectors.base import Connector, Role

_TYPES: dict[str, str] = {
    "HTTP": "integrationos.connectors.http:HttpConnector",
    "JDBC": "integrationos.connectors.jdbc:JdbcConnector",
    "KAFKA": "integrationos.connectors.kafka:KafkaConnector",
    "SALESFORCE": "integrationos.connectors.salesforce:SalesforceConnector",
    "SFTP": "integrationos.connectors.sftp:SftpConnector",
    "SMTP": "integrationos.connectors.smtp:SmtpConnector",
}

# jsonschema's own messages quote the offending value; for these validators they only
# name properties, so they are safe to return even for credentials.
_NAME_ONLY_VALIDATORS = frozenset({"required", "additionalProperties", "dependentRequired"})


class UnknownConnectorType(ValueError):
    """The type name is not registered (the API answers 400 / 404 with the known ones)."""


class InvalidConnectorConfig(ValueError):
    """``build`` was given a config or credentials that do not satisfy the type's specs."""

    def __init__(self, type_name: str, violations: list[dict[str, str]]) -> None:
        listed = "; ".join(f"{v['field']}: {v['message']}" for v in violations)
        super().__init__(f"invalid {type_name} connector: {listed}")
        self.violations = violations


def connector_types() -> list[str]:
    return sorted(_TYPES)


@cache
def connector_class(type_name: str) -> type[Connector]:
    try:
        target = _TYPES[type_name]
    except KeyError:
        known = ", ".join(connector_types())
        raise UnknownConnectorType(
            f"unknown connector type {type_name!r} (known: {known})"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"{target} is not a Connector")
    return cls


def describe(type_name: str) -> dict[str, Any]:
    """What GET /v1/connector-types returns for one type: enough to render a form."""
    cls = connector_class(type_name)
    return {
        "type": cls.type_name,
        "displayName": cls.display_name,
        "roles": sorted(cls.roles),
        "configSpec": cls.config_spec,
        "credentialsSpec": cls.credentials_spec,
    }


def validate_config(
    type_name: str,
    config: Any,
    credentials: Any,
    *,
    role: Role | None = None,
) -> list[dict[str, str]]:
    """Every violation of the type's specs, as ``{"field": json-pointer, "message": ...}``.

    Config and credentials are validated as one document so pointers read
    ``/config/port`` or ``/credentials/password``. Messages about credentials never
    repeat the submitted value. With ``role``, also checks the type can play that role and
    the fields the connector needs for it (``required_for_role`` on the class).
    """
    cls = connector_class(type_name)
    validator = Draft202012Validator(
        {
            "type": "object",
            "properties": {"config": cls.config_spec, "credentials": cls.credentials_spec},
        }
    )
    violations: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    document = {"config": config, "credentials": credentials}
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        for violation in _violations(error):
            if (violation["field"], violation["message"]) not in seen:
                seen.add((violation["field"], violation["message"]))
                violations.append(violation)
    if role is not None:
        violations.extend(_role_violations(cls, role, config))
    return violations


def build(type_name: str, config: dict[str, Any], credentials: dict[str, Any]) -> Connector:
    """A ready connector; refuses (``InvalidConnectorConfig``) anything the specs reject."""
    violations = validate_config(type_name, config, credentials)
    if violations:
        raise InvalidConnectorConfig(type_name, violations)
    return connector_class(type_name)(config, credentials)


def _role_violations(cls: type[Connector], role: Role, config: Any) -> list[dict[str, str]]:
    if role not in cls.roles:
        playable = ", ".join(sorted(cls.roles)) or "none yet"
        return [{"field": "/role", "message": f"{cls.type_name} cannot be a {role} "
                 f"(roles: {playable})"}]
    needed: tuple[str, ...] = getattr(cls, "required_for_role", {}).get(role, ())
    present = config if isinstance(config, dict) else {}
    return [
        {"field": _pointer(["config", name]), "message": f"{name!r} is required for a {role}"}
        for name in needed
        if name not in present
    ]


def _violations(error: ValidationError) -> list[dict[str, str]]:
    path = list(error.absolute_path)
    # Point at the offending property itself rather than at the object that lacks it.
    if error.validator == "required" and isinstance(error.instance, dict):
        return [
            {"field": _pointer([*path, name]), "message": f"{name!r} is a required property"}
            for name in error.validator_value
            if name not in error.instance
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        return [
            {"field": _pointer([*path, name]), "message": "unknown property"}
            for name in error.instance
            if name not in known
        ]
    secret = bool(path) and path[0] == "credentials"
    return [{"field": _pointer(path), "message": _safe_message(error) if secret
             else error.message}]


def _safe_message(error: ValidationError) -> str:
    """A message built from the schema alone, for values that must not be echoed."""
    rule, expected = error.validator, error.validator_value
    if rule in _NAME_ONLY_VALIDATORS:
        return error.message
    if rule == "type":
        return f"must be of type {expected}"
    if rule == "enum":
        return f"must be one of {expected}"
    if rule == "not" and isinstance(expected, dict) and "required" in expected:
        return f"must not combine {', '.join(expected['required'])}"
    if rule == "oneOf" and all(set(branch) == {"required"} for branch in expected):
        names = ", ".join(name for branch in expected for name in branch["required"])
        return f"needs exactly one of {names}"
    return f"fails the {rule!r} rule ({expected!r})"


def _pointer(path: list[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)
