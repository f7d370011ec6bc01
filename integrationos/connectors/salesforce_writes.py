"""The target's three operations (create, update, upsert) at three sizes.

One JSON object is one REST call on ``sobjects/<SObject>``. A JSON array below
``bulkThreshold`` (at most 199 records) is one sObject Collections call with ``allOrNone``,
so the batch is saved or refused as a whole and a retry can never half-apply it. An array at
or above the threshold becomes one Bulk API 2.0 ingest job, which is not all-or-none: the
rows Salesforce refuses are reported, the others stay written. Everything here is
synchronous simple-salesforce and runs in a worker thread.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from simple_salesforce import Salesforce

from integrationos.connectors.base import ConnectorError
from integrationos.connectors.salesforce_errors import (
    RecordsRejected,
    bulk_error,
    record_error,
)

Operation = Literal["create", "update", "upsert"]
BULK_POLL_S = 0.5  # first wait, then poll interval, for a bulk job's state
BULK_NULL = "#N/A"  # how Bulk API 2.0 CSV sets a field to null
_BULK_OPERATIONS = {"create": "insert", "update": "update", "upsert": "upsert"}
_DONE = {"create": "created", "update": "updated", "upsert": "upserted"}


@dataclass(frozen=True)
class WritePlan:
    sobject: str
    operation: Operation
    external_id_field: str | None
    bulk_threshold: int

    def key_field(self) -> str | None:
        """The field every record must carry: the Id to update, the external id to upsert."""
        return {"update": "Id", "upsert": self.external_id_field}.get(self.operation)


def write(sf: Salesforce, plan: WritePlan, payload: Any) -> str:
    """Write the payload; returns what Salesforce answered, for ``Delivery.detail``."""
    if isinstance(payload, dict):
        return _write_one(sf, plan, _checked(plan, payload))
    if isinstance(payload, list) and payload:
        records = [_checked(plan, r) for r in payload]
        if len(records) >= plan.bulk_threshold:
            return _write_bulk(sf, plan, records)
        return _write_collection(sf, plan, records)
    raise ConnectorError("PAYLOAD_NOT_RECORDS", "a Salesforce target needs a JSON object or a "
                         "non-empty array of objects", retryable=False)


def _checked(plan: WritePlan, record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ConnectorError("PAYLOAD_NOT_RECORDS", "every array item must be a JSON object",
                             retryable=False)
    key = plan.key_field()
    if key is not None and record.get(key) in (None, ""):
        raise ConnectorError(f"MISSING_{'ID' if key == 'Id' else 'EXTERNAL_ID'}",
                             f"{plan.operation} needs the {key} field in every record",
                             retryable=False)
    return record


def _write_one(sf: Salesforce, plan: WritePlan, record: dict[str, Any]) -> str:
    sobject = getattr(sf, plan.sobject)
    if plan.operation == "create":
        return f"created {sobject.create(record)['id']}"
    if plan.operation == "update":
        sobject.update(record["Id"], _without(record, "Id"))
        return f"updated {record['Id']}"
    key = str(plan.external_id_field)
    path = f"{key}/{quote(str(record[key]), safe='')}"
    response = sobject.upsert(path, _without(record, key), raw_response=True)
    saved = response.json() if response.content else {}
    verb = "created" if response.status_code == 201 else "updated"
    return f"upserted {key}={record[key]}: {verb} {saved.get('id', '')}".rstrip()


def _write_collection(sf: Salesforce, plan: WritePlan, records: list[dict[str, Any]]) -> str:
    body = {"allOrNone": True,
            "records": [{"attributes": {"type": plan.sobject}, **r} for r in records]}
    if plan.operation == "create":
        results = sf.restful("composite/sobjects", method="POST", json=body)
    elif plan.operation == "update":
        results = sf.restful("composite/sobjects", method="PATCH", json=body)
    else:
        results = sf.restful(f"composite/sobjects/{plan.sobject}/{plan.external_id_field}",
                             method="PATCH", json=body)
    failed = [record_error(e) for r in results or [] if not r.get("success")
              for e in r.get("errors") or [{}]]
    if failed:
        raise RecordsRejected(failed, len(records), written=0)
    return f"{len(records)} records {_DONE[plan.operation]} (sObject Collections)"


def _write_bulk(sf: Salesforce, plan: WritePlan, records: list[dict[str, Any]]) -> str:
    bulk = getattr(sf.bulk2, plan.sobject)
    operation = getattr(bulk, _BULK_OPERATIONS[plan.operation])
    options: dict[str, Any] = {"wait": BULK_POLL_S}
    if plan.operation == "upsert":
        options["external_id_field"] = plan.external_id_field
    jobs = operation(records=[_csv_row(r) for r in records], **options)
    failed = sum(int(job["numberRecordsFailed"]) for job in jobs)
    if failed:
        errors = [bulk_error(row["sf__Error"]) for job in jobs
                  if int(job["numberRecordsFailed"])
                  for row in csv.DictReader(io.StringIO(bulk.get_failed_records(job["job_id"])))]
        raise RecordsRejected(errors, len(records), written=len(records) - failed)
    ids = ", ".join(job["job_id"] for job in jobs)
    return f"{len(records)} records {_DONE[plan.operation]} (Bulk API 2.0 job {ids})"


def _without(record: dict[str, Any], name: str) -> dict[str, Any]:
    """The fields to send when ``name`` travels in the URL instead."""
    return {k: v for k, v in record.items() if k != name}


def _csv_row(record: dict[str, Any]) -> dict[str, str]:
    """A record as Bulk API 2.0 CSV cells: null is ``#N/A``, booleans are lower case."""
    row = {}
    for name, value in record.items():
        if isinstance(value, dict | list):
            raise ConnectorError("PAYLOAD_NOT_FLAT", f"field {name!r} is not a plain value: "
                                 "Bulk API 2.0 rows are flat", retryable=False)
        if value is None:
            row[name] = BULK_NULL
        elif isinstance(value, bool):
            row[name] = str(value).lower()
        else:
            row[name] = str(value)
    return row
