"""A Salesforce emulator: the login and REST endpoints the SALESFORCE connector calls, over
HTTPS on a free loopback port (Starlette served by uvicorn in a thread).

No Salesforce org is reachable from the test machines, so this was written from Salesforce's
public references, and covers only what the connector uses:

- SOAP API Developer Guide, ``login()``: ``POST /services/Soap/u/{version}``, the
  ``loginResponse`` (``serverUrl``, ``sessionId``) and the ``INVALID_LOGIN`` SOAP fault
  (HTTP 500) that simple-salesforce's ``soap_login`` parses;
- REST API Developer Guide, "OAuth 2.0 Client Credentials Flow" and "OAuth 2.0 JWT Bearer
  Flow": ``POST /services/oauth2/token`` answering ``access_token`` + ``instance_url``, or
  ``{"error", "error_description"}`` with HTTP 400 (``invalid_client``, ``invalid_grant``);
- REST API, sObject Basic Information / Rows / "Insert or Update (Upsert) a Record Using an
  External ID": ``POST sobjects/{SObject}/`` (201), ``PATCH sobjects/{SObject}/{Id}`` (204),
  ``PATCH sobjects/{SObject}/{Field}/{value}`` (201 created / 200 updated, API 46.0+),
  ``GET sobjects/{SObject}/describe``;
- REST API, Query: ``GET query/?q=`` with ``totalSize`` / ``done`` / ``records``;
- REST API, sObject Collections create / update / upsert (``composite/sobjects``) with
  ``allOrNone`` and ``ALL_OR_NONE_OPERATION_ROLLED_BACK``;
- Bulk API 2.0 Developer Guide, ingest jobs: create (``POST jobs/ingest``), upload
  (``PUT .../batches``, 201), ``PATCH`` state ``UploadComplete`` / ``Aborted``, job info, and
  ``successfulResults`` / ``failedResults`` / ``unprocessedrecords`` CSVs (``sf__Id``,
  ``sf__Created``, ``sf__Error`` as ``CODE:message:fields --``);
- "Status Codes and Error Responses": errors as ``[{"message", "errorCode", "fields"}]``;
  401 ``INVALID_SESSION_ID`` for an unknown or expired token; 403 ``REQUEST_LIMIT_EXCEEDED``.

Switches for tests: ``expire_sessions()`` invalidates every issued token (the next call gets
401 ``INVALID_SESSION_ID``; logging in again works unless the password was changed),
``fail_next(...)`` answers the next data calls with a given error, ``delay`` slows every data
call (timeouts), ``advertised_url`` changes the instance a login answer names. Bulk jobs are
processed synchronously when their upload completes. The emulator's certificate is
self-signed; ``ca_file`` is what a client must trust (``REQUESTS_CA_BUNDLE``).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import itertools
import secrets
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.emulators.salesforce_org import ApiError, Org
from tests.tls import self_signed

ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled "
               "back because not all records were valid and the request was using AllOrNone "
               "header", "fields": []}
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Fault:
    status: int
    code: str
    message: str
    remaining: int


@dataclass
class IngestJob:
    id: str
    sobject: str
    operation: str
    external_id_field: str | None
    state: str = "Open"
    data: str = ""
    successes: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    def info(self, version: str) -> dict[str, Any]:
        return {"id": self.id, "operation": self.operation, "object": self.sobject,
                "createdById": USER_ID, "state": self.state, "contentType": "CSV",
                "externalIdFieldName": self.external_id_field, "apiVersion": float(version),
                "concurrencyMode": "Parallel", "lineEnding": "LF", "columnDelimiter": "COMMA",
                "contentUrl": f"services/data/v{version}/jobs/ingest/{self.id}/batches",
                "numberRecordsProcessed": len(self.successes) + len(self.failures),
                "numberRecordsFailed": len(self.failures)}


class SalesforceEmulator:
    """One org, its user and connected app, served until ``stop``."""

    username = "integration@example.com"
    password = "Pa55word!"
    security_token = "TOKEN42"
    client_id = "3MVG9-emulated-consumer-key"
    client_secret = "consumer-secret-42"

    def __init__(self, workdir: Path) -> None:
        self.org = Org()
        self.jwt_public_key: bytes | None = None  # PEM of the connected app's certificate key
        self.delay = 0.0
        self.advertised_url: str | None = None
        self.logins: list[str] = []  # the flow of every successful login
        self._tokens: set[str] = set()
        self._faults: list[Fault] = []
        self._jobs: dict[str, IngestJob] = {}
        self._job_ids = itertools.count(1)
        self._lock = threading.Lock()
        self.ca_file, self._key_file = self_signed(workdir, "salesforce-emulator")
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(
            self._app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1,
            ssl_certfile=self.ca_file, ssl_keyfile=self._key_file))
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]}, daemon=True)

    # --- lifecycle and switches ----------------------------------------------------------

    def start(self) -> SalesforceEmulator:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the Salesforce emulator did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        # Forced: a client's response still referenced (say, by a test holding an exception
        # traceback) keeps its keep-alive socket open, and a graceful stop would wait for it.
        self._server.should_exit = self._server.force_exit = True
        self._thread.join(10)
        self._socket.close()

    def expire_sessions(self) -> None:
        with self._lock:
            self._tokens.clear()

    def fail_next(self, status: int, code: str, message: str, times: int = 1) -> None:
        with self._lock:
            self._faults.append(Fault(status, code, message, times))

    def records(self, sobject: str) -> list[dict[str, Any]]:
        with self.org.lock:
            return [dict(r) for r in self.org.records[sobject].values()]

    # --- the app -------------------------------------------------------------------------

    def _app(self) -> Starlette:
        data = "/services/data/v{version}"
        ingest = data + "/jobs/ingest"
        api = self._api
        return Starlette(routes=[
            Route("/services/Soap/u/{version}", self._soap_login, methods=["POST"]),
            Route("/services/oauth2/token", self._token, methods=["POST"]),
            Route(data + "/sobjects/{sobject}/describe", api(self._describe), methods=["GET"]),
            Route(data + "/sobjects/{sobject}/", api(self._create), methods=["POST"]),
            Route(data + "/sobjects/{sobject}/{record_id}", api(self._update),
                  methods=["PATCH"]),
            Route(data + "/sobjects/{sobject}/{field}/{value}", api(self._upsert),
                  methods=["PATCH"]),
            Route(data + "/query/", api(self._query), methods=["GET"]),
            Route(data + "/composite/sobjects", api(self._collection),
                  methods=["POST", "PATCH"]),
            Route(data + "/composite/sobjects/{sobject}/{field}", api(self._collection),
                  methods=["PATCH"]),
            Route(ingest, api(self._create_job), methods=["POST"]),
            Route(ingest + "/{job_id}", api(self._job), methods=["GET", "PATCH"]),
            Route(ingest + "/{job_id}/batches", api(self._upload), methods=["PUT"]),
            Route(ingest + "/{job_id}/{results}", api(self._results), methods=["GET"]),
        ])

    def _api(self, handler: Handler) -> Handler:
        """Every data call: delay, session check, injected faults, errors as error lists."""

        @wraps(handler)
        async def call(request: Request) -> Response:
            await asyncio.sleep(self.delay)
            try:
                self._authorize(request)
                self._injected_fault()
                return await handler(request)
            except ApiError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)

        return call

    def _authorize(self, request: Request) -> None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            if token not in self._tokens:
                raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _injected_fault(self) -> None:
        with self._lock:
            if not self._faults:
                return
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
        raise ApiError(fault.status, fault.code, fault.message)

    def _issue(self, flow: str) -> tuple[str, str]:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(24)}"
        with self._lock:
            self._tokens.add(token)
            self.logins.append(flow)
        return token, self.advertised_url or self.url

    # --- login ---------------------------------------------------------------------------

    async def _soap_login(self, request: Request) -> Response:
        version = request.path_params["version"]
        values = {el.tag.rsplit("}", 1)[-1]: el.text or ""
                  for el in ET.fromstring(await request.body()).iter()}
        if (values.get("username"), values.get("password")) != (
                self.username, self.password + self.security_token):
            return Response(_SOAP_FAULT, status_code=500, media_type="text/xml")
        token, instance = self._issue("password")
        body = _SOAP_RESULT.format(server=f"{instance}/services/Soap/u/{version}/{ORG_ID[:15]}",
                                   session=escape(token), user=USER_ID)
        return Response(body, media_type="text/xml")

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))  # x-www-form-urlencoded
        grant = form.get("grant_type")
        if grant == "client_credentials":
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            if basic := request.headers.get("Authorization", "").removeprefix("Basic "):
                client_id, _, client_secret = base64.b64decode(basic).decode().partition(":")
            if (client_id, client_secret) != (self.client_id, self.client_secret):
                return _oauth_error("invalid_client", "invalid client credentials")
            return self._token_answer("client_credentials")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(str(form.get("assertion")), self.jwt_public_key or b"",
                                    algorithms=["RS256"], audience=self.url,
                                    issuer=self.client_id, options={"require": ["exp"]})
            except (jwt.PyJWTError, ValueError):
                return _oauth_error("invalid_grant", "invalid assertion")
            if claims.get("sub") != self.username:
                return _oauth_error("invalid_grant", "user hasn't approved this consumer")
            return self._token_answer("jwt")
        return _oauth_error("unsupported_grant_type", "grant type not supported")

    def _token_answer(self, flow: str) -> Response:
        token, instance = self._issue(flow)
        return JSONResponse({
            "access_token": token, "instance_url": instance, "token_type": "Bearer",
            "id": f"{self.url}/id/{ORG_ID}/{USER_ID}", "scope": "api",
            "issued_at": str(int(time.time() * 1000)), "signature": secrets.token_urlsafe(32),
        })

    # --- REST ----------------------------------------------------------------------------

    async def _describe(self, request: Request) -> Response:
        sobject = self.org.type(request.path_params["sobject"])
        fields = sorted(sobject.readable())
        return JSONResponse({"name": sobject.name, "keyPrefix": sobject.key_prefix,
                             "createable": True, "updateable": True,
                             "fields": [{"name": f, "nillable": f not in sobject.required}
                                        for f in fields]})

    async def _create(self, request: Request) -> Response:
        record = self.org.create(request.path_params["sobject"], await request.json())
        return JSONResponse({"id": record["Id"], "success": True, "errors": []},
                            status_code=201)

    async def _update(self, request: Request) -> Response:
        p = request.path_params
        self.org.update(p["sobject"], p["record_id"], await request.json())
        return Response(status_code=204)

    async def _upsert(self, request: Request) -> Response:
        p = request.path_params
        record, created = self.org.upsert(p["sobject"], p["field"], p["value"],
                                          await request.json())
        return JSONResponse({"id": record["Id"], "success": True, "errors": [],
                             "created": created}, status_code=201 if created else 200)

    async def _query(self, request: Request) -> Response:
        version = request.path_params["version"]
        sobject, rows = self.org.query(request.query_params.get("q", ""))
        records = [{"attributes": {"type": sobject, "url": f"/services/data/v{version}/"
                                   f"sobjects/{sobject}/{row.get('Id')}"}, **row}
                   for row in rows]
        return JSONResponse({"totalSize": len(records), "done": True, "records": records})

    async def _collection(self, request: Request) -> Response:
        body = await request.json()
        external_id = request.path_params.get("field")
        snapshot = self.org.snapshot()
        results = [self._save(request.method, record, external_id)
                   for record in body.get("records", [])]
        if body.get("allOrNone") and not all(r["success"] for r in results):
            self.org.roll_back(snapshot)
            results = [r if not r["success"] else {"id": None, "success": False,
                                                   "errors": [ROLLED_BACK]} for r in results]
        return JSONResponse(results)

    def _save(self, method: str, record: dict[str, Any], external_id: str | None,
              ) -> dict[str, Any]:
        fields = {k: v for k, v in record.items() if k != "attributes"}
        sobject = record.get("attributes", {}).get("type", "")
        try:
            if method == "POST":
                saved, created = self.org.create(sobject, fields), True
            elif external_id is None:
                record_id = fields.pop("Id", None) or fields.pop("id", "")
                saved, created = self.org.update(sobject, record_id, fields), False
            else:
                saved, created = self.org.upsert(sobject, external_id, fields.get(external_id),
                                                 fields)
        except ApiError as exc:
            return {"id": None, "success": False, "errors": [exc.save_error()]}
        result = {"id": saved["Id"], "success": True, "errors": []}
        return result | ({"created": created} if external_id else {})

    # --- Bulk API 2.0 --------------------------------------------------------------------

    async def _create_job(self, request: Request) -> Response:
        body = await request.json()
        sobject = self.org.type(body.get("object", ""))
        if body.get("operation") not in ("insert", "update", "upsert"):
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {body.get('operation')}")
        job = IngestJob(f"750{next(self._job_ids):012d}AAA", sobject.name, body["operation"],
                        body.get("externalIdFieldName"))
        self._jobs[job.id] = job
        return JSONResponse(job.info(request.path_params["version"]))

    def _find_job(self, request: Request) -> IngestJob:
        job = self._jobs.get(request.path_params["job_id"])
        if job is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    async def _upload(self, request: Request) -> Response:
        job = self._find_job(request)
        if job.state != "Open":
            raise ApiError(400, "INVALIDJOBSTATE", f"Job state is {job.state}")
        job.data += (await request.body()).decode()
        return Response(status_code=201)

    async def _job(self, request: Request) -> Response:
        job = self._find_job(request)
        if request.method == "PATCH":
            state = (await request.json()).get("state")
            if state == "UploadComplete" and job.state == "Open":
                job.state = "UploadComplete"
                self._process(job)
            elif state == "Aborted":
                job.state = "Aborted"
            else:
                raise ApiError(400, "INVALIDJOBSTATE", f"Cannot set {state} on a {job.state} job")
        return JSONResponse(job.info(request.path_params["version"]))

    def _process(self, job: IngestJob) -> None:
        for row in csv.DictReader(io.StringIO(job.data)):
            fields = {k: (None if v == "#N/A" else v) for k, v in row.items() if v != ""}
            try:
                if job.operation == "insert":
                    saved, created = self.org.create(job.sobject, fields), True
                elif job.operation == "update":
                    saved = self.org.update(job.sobject, str(fields.pop("Id", "")), fields)
                    created = False
                else:
                    key = str(job.external_id_field)
                    saved, created = self.org.upsert(job.sobject, key, fields.get(key), fields)
            except ApiError as exc:
                cell = f"{exc.code}:{exc.message}:{','.join(exc.fields)} --"
                job.failures.append({"sf__Id": "", "sf__Error": cell, **row})
            else:
                job.successes.append({"sf__Id": saved["Id"], "sf__Created": str(created).lower(),
                                      **row})
        job.state = "JobComplete"

    async def _results(self, request: Request) -> Response:
        job = self._find_job(request)
        kind = request.path_params["results"]
        rows = {"successfulResults": job.successes, "failedResults": job.failures,
                "unprocessedrecords": []}.get(kind)
        if rows is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        lead = ["sf__Id", "sf__Created"] if kind == "successfulResults" else ["sf__Id",
                                                                               "sf__Error"]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=lead + _columns(job.data), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return PlainTextResponse(out.getvalue(), media_type="text/csv")


def _columns(data: str) -> list[str]:
    return next(csv.reader(io.StringIO(data)), [])


def _oauth_error(error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


_SOAP_RESULT = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body><loginResponse><result><passwordExpired>false</passwordExpired>"
    "<sandbox>false</sandbox><serverUrl>{server}</serverUrl><sessionId>{session}</sessionId>"
    "<userId>{user}</userId></result></loginResponse></soapenv:Body></soapenv:Envelope>"
)
_SOAP_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="urn:fault.partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
    "<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, "
    "password, security token; or user locked out.</faultstring><detail>"
    '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>'
    "<sf:exceptionMessage>Invalid username, password, security token; or user locked out."
    "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>"
    "</soapenv:Envelope>"
)
