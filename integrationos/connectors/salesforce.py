"""Salesforce orgs through simple-salesforce: a target that creates, updates or upserts
records, and a source that polls a SOQL query on ``SystemModstamp``.

simple-salesforce is synchronous, so every call runs in a worker thread; one logged-in
session per connector is shared by those threads and renewed once when Salesforce answers
``INVALID_SESSION_ID`` (``salesforce_auth``). Writes by size and operation live in
``salesforce_writes``, the polling cursor in ``salesforce_soql``, and the mapping of every
failure to a retryable or permanent ``ConnectorError`` in ``salesforce_errors``.

As a source the connector advances only on ``commit``: a batch the engine failed to forward
is read again by the next poll, and after a restart ``restore`` resumes after the last
stored checkpoint, so records are never skipped and a committed record is not read again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

from simple_salesforce import Salesforce

from integrationos.connectors.base import (
    Connector,
    ConnectorError,
    Delivery,
    HealthReport,
    OutboundMessage,
    Role,
    SourceRecord,
)
from integrationos.connectors.salesforce_auth import (
    LoginSettings,
    SalesforceSession,
    TimeoutSession,
)
from integrationos.connectors.salesforce_errors import FAILURES, classify
from integrationos.connectors.salesforce_soql import Cursor, PollQuery
from integrationos.connectors.salesforce_writes import WritePlan, write

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
DEFAULT_API_VERSION = "60.0"
DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_BULK_THRESHOLD = 200
DEFAULT_POLL_INTERVAL_S = 30
MAX_PAGE = 2000  # what one REST query answer holds without a nextRecordsUrl
_NAME = "^[A-Za-z][A-Za-z0-9_]*$"
_ORIGIN = "^https://[^\\s/?#]+/?$"

T = TypeVar("T")
Status = Literal["UP", "DOWN"]


class SalesforceConnector(Connector):
    type_name: ClassVar[str] = "SALESFORCE"
    display_name: ClassVar[str] = "Salesforce"
    roles: ClassVar[frozenset[Role]] = frozenset({"source", "target"})
    required_for_role: ClassVar[dict[Role, tuple[str, ...]]] = {
        "target": ("sobject",), "source": ("soql",)}
    config_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "loginUrl": {"type": "string", "pattern": _ORIGIN, "default": DEFAULT_LOGIN_URL,
                         "description": "Where to log in: https://login.salesforce.com, "
                         "https://test.salesforce.com (sandboxes) or your My Domain URL "
                         "(required for client credentials)."},
            "instanceUrl": {"type": "string", "pattern": _ORIGIN,
                            "description": "Send API calls here instead of the instance the "
                            "login answer names (e.g. a proxy)."},
            "apiVersion": {"type": "string", "pattern": "^[0-9]{2,3}\\.0$",
                           "default": DEFAULT_API_VERSION},
            "sobject": {"type": "string", "pattern": _NAME,
                        "description": "Target: the object written, e.g. Contact."},
            "operation": {"type": "string", "enum": ["create", "update", "upsert"],
                          "default": "create",
                          "description": "Target: update needs Id in each record, upsert "
                          "the externalIdField."},
            "externalIdField": {"type": "string", "pattern": _NAME,
                                "description": "Target: the external id field upserts match "
                                "on, e.g. External_Id__c."},
            "bulkThreshold": {"type": "integer", "minimum": 1, "maximum": 200,
                              "default": DEFAULT_BULK_THRESHOLD,
                              "description": "Target: JSON arrays with at least this many "
                              "records go through a Bulk API 2.0 job; smaller ones through "
                              "one all-or-none sObject Collections call."},
            "soql": {"type": "string", "pattern": "^\\s*[Ss][Ee][Ll][Ee][Cc][Tt]\\s",
                     "description": "Source: SELECT <fields> FROM <object> [WHERE ...]; the "
                     "connector adds the SystemModstamp filter, ORDER BY and LIMIT."},
            "pollIntervalSeconds": {"type": "number", "minimum": 1, "maximum": 86_400,
                                    "default": DEFAULT_POLL_INTERVAL_S},
            "timeoutMs": {"type": "integer", "minimum": 100, "maximum": 120_000,
                          "default": DEFAULT_TIMEOUT_MS},
        },
        "if": {"properties": {"operation": {"const": "upsert"}}, "required": ["operation"]},
        "then": {"required": ["externalIdField"]},
    }
    credentials_spec: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "username": {"type": "string", "minLength": 1},
            "password": {"type": "string", "minLength": 1, "writeOnly": True},
            "securityToken": {"type": "string", "writeOnly": True},
            "clientId": {"type": "string", "minLength": 1,
                         "description": "Consumer key of the connected app."},
            "clientSecret": {"type": "string", "minLength": 1, "writeOnly": True},
            "privateKey": {"type": "string", "minLength": 1, "writeOnly": True,
                           "description": "PEM RSA key whose certificate the connected app "
                           "holds (JWT bearer flow)."},
        },
        "dependentRequired": {"password": ["username"], "securityToken": ["password"],
                              "clientSecret": ["clientId"],
                              "privateKey": ["clientId", "username"]},
        "oneOf": [{"required": ["password"]}, {"required": ["clientSecret"]},
                  {"required": ["privateKey"]}],
    }

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any]) -> None:
        super().__init__(config, credentials)
        self._session: SalesforceSession | None = None
        self._cursor: Cursor | None = None  # the last committed record
        self._restored: str | None = None  # a checkpoint not yet parsed
        self._next_poll = 0.0

    def __repr__(self) -> str:
        return f"SalesforceConnector({self._login_url()})"

    @property
    def timeout_ms(self) -> int:
        return int(self.config.get("timeoutMs", DEFAULT_TIMEOUT_MS))

    def _login_url(self) -> str:
        return self.config.get("loginUrl", DEFAULT_LOGIN_URL).rstrip("/")

    def _sf(self) -> SalesforceSession:
        if self._session is None:
            instance_url = self.config.get("instanceUrl")
            settings = LoginSettings(
                self._login_url(), self.config.get("apiVersion", DEFAULT_API_VERSION),
                instance_url.rstrip("/") if instance_url else None)
            self._session = SalesforceSession(settings, self._credentials,
                                              TimeoutSession(self.timeout_ms / 1000))
        return self._session

    async def _call(self, action: Callable[[Salesforce], T], *, create: bool = False) -> T:
        """Run a simple-salesforce call in a thread; raise a classified ``ConnectorError``."""
        try:
            return await asyncio.to_thread(self._sf().call, action)
        except FAILURES as exc:
            raise classify(exc, self.timeout_ms, create=create) from None

    async def write(self, message: OutboundMessage) -> Delivery:
        sobject = self.config.get("sobject")
        if not sobject:
            raise ConnectorError("NO_SOBJECT", "this Salesforce connection has no sobject, so "
                                 "it cannot be a target", retryable=False)
        plan = WritePlan(sobject, self.config.get("operation", "create"),
                         self.config.get("externalIdField"),
                         int(self.config.get("bulkThreshold", DEFAULT_BULK_THRESHOLD)))
        detail = await self._call(lambda sf: write(sf, plan, message.payload),
                                  create=plan.operation == "create")
        return Delivery(target=f"salesforce:{sobject}", detail=detail)

    def restore(self, checkpoint: str | None) -> None:
        self._cursor, self._restored = None, checkpoint

    async def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        query = self._query()
        self._resume()
        wait = self._next_poll - time.monotonic()
        if wait > 0:
            await asyncio.sleep(min(wait, timeout))
            if time.monotonic() < self._next_poll:
                return []
        limit = max(1, min(max_records, MAX_PAGE))
        soql = query.page(self._cursor, limit)
        rows = (await self._call(lambda sf: sf.query(soql)))["records"]
        interval = float(self.config.get("pollIntervalSeconds", DEFAULT_POLL_INTERVAL_S))
        # A full page means more is waiting: read on at once; otherwise rest for the interval.
        self._next_poll = 0.0 if len(rows) >= limit else time.monotonic() + interval
        return [_record(query.sobject, row) for row in rows]

    async def commit(self, records: list[SourceRecord]) -> None:
        last = next((r.checkpoint for r in reversed(records) if r.checkpoint), None)
        if last is not None:
            self._cursor = Cursor.from_checkpoint(last)

    def _query(self) -> PollQuery:
        try:
            return PollQuery.parse(self.config.get("soql", ""))
        except ValueError as exc:
            raise ConnectorError("BAD_SOQL", str(exc), retryable=False) from None

    def _resume(self) -> None:
        """Apply the checkpoint ``restore`` was given, once."""
        if self._restored is None:
            return
        try:
            self._cursor = Cursor.from_checkpoint(self._restored)
        except ValueError:
            raise ConnectorError("BAD_CHECKPOINT", "the stored checkpoint is not a Salesforce "
                                 "cursor", retryable=False) from None
        self._restored = None

    async def test(self, timeout: float = 10.0) -> HealthReport:
        started = time.monotonic()
        status: Status = "UP"
        try:
            async with asyncio.timeout(timeout):
                detail = await self._call(self._probe)
        except TimeoutError:
            status, detail = "DOWN", f"timeout: no answer within {timeout:g} s"
        except ConnectorError as exc:
            status, detail = "DOWN", exc.message
        except Exception as exc:  # a health check reports, it never raises
            status, detail = "DOWN", f"unexpected {type(exc).__name__}"
        return HealthReport(status, int((time.monotonic() - started) * 1000), detail)

    def _probe(self, sf: Salesforce) -> str:
        """Logged in (by getting ``sf``); then describe the object this connection uses."""
        sobject = self.config.get("sobject")
        if sobject is None and "soql" in self.config:
            sobject = self._query().sobject
        if sobject is None:
            return f"logged in to {sf.sf_instance}"
        described = getattr(sf, sobject).describe()
        return f"logged in to {sf.sf_instance}; {sobject}: {len(described['fields'])} fields"

    async def close(self) -> None:
        if self._session is not None:
            self._session.http.close()
            self._session = None


def _record(sobject: str, row: dict[str, Any]) -> SourceRecord:
    fields = {k: v for k, v in row.items() if k != "attributes"}
    cursor = Cursor(fields["SystemModstamp"], fields["Id"])
    return SourceRecord(
        key=cursor.id.encode(),
        value=json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode(),
        position=f"{sobject}/{cursor.id}@{cursor.system_modstamp}",
        checkpoint=cursor.checkpoint(),
    )
