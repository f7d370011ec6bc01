"""Logging in to Salesforce, and logging in again once when a session expires.

simple-salesforce builds its login URLs as ``https://{domain}.salesforce.com``, which cannot
name a My Domain on another host, a proxy, or a local emulator. So the connector sends the
same login requests itself to ``loginUrl`` -- the SOAP ``login()`` call simple-salesforce
uses for username + password + security token, and the OAuth 2.0 token endpoint for the
client-credentials and JWT bearer flows -- and parses the answers with simple-salesforce's
own ``soap_login`` / ``token_login``. The session id then drives a ``Salesforce`` client in
its "direct" mode, where simple-salesforce never logs in by itself: renewal is ours, done
once per expiry under a lock, so many concurrent writes that hit one expired session cause a
single login.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession
from simple_salesforce.login import soap_login, token_login

from integrationos.connectors.salesforce_errors import SessionLost

T = TypeVar("T")
JWT_LIFETIME_S = 180  # Salesforce accepts assertions that expire within 3 minutes
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_SOAP_LOGIN = """<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
  <env:Header><urn:CallOptions><urn:client>integrationos</urn:client></urn:CallOptions></env:Header>
  <env:Body>
    <n1:login xmlns:n1="urn:partner.soap.sforce.com">
      <n1:username>{username}</n1:username>
      <n1:password>{password}</n1:password>
    </n1:login>
  </env:Body>
</env:Envelope>"""


@dataclass(frozen=True)
class LoginSettings:
    login_url: str  # https://login.salesforce.com, https://test.salesforce.com or a My Domain
    api_version: str
    instance_url: str | None  # overrides the instance the login answer names


class TimeoutSession(requests.Session):
    """A requests session with a default timeout: simple-salesforce passes none, and
    requests without one would wait forever on a silent server."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().request(method, url, *args, **kwargs)


def login(settings: LoginSettings, credentials: dict[str, Any],
          http: requests.Session) -> tuple[str, str]:
    """``(session id, instance host)`` by the flow the credentials name.

    Raises ``SalesforceAuthenticationFailed`` when Salesforce refuses, a requests error when
    it cannot be reached.
    """
    if "password" in credentials:
        secret = credentials["password"] + credentials.get("securityToken", "")
        body = _SOAP_LOGIN.format(username=escape(credentials["username"]),
                                  password=escape(secret))
        url = f"{settings.login_url}/services/Soap/u/{settings.api_version}"
        headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
        return soap_login(url, body, headers, None, http)
    token_url = f"{settings.login_url}/services/oauth2/token"
    client_id = credentials["clientId"]
    if "privateKey" in credentials:
        data = {"grant_type": JWT_BEARER, "assertion": _assertion(settings, credentials)}
        return token_login(token_url, data, _domain(settings), client_id, None, None, http)
    data = {"grant_type": "client_credentials", "client_id": client_id,
            "client_secret": credentials["clientSecret"]}
    return token_login(token_url, data, _domain(settings), client_id, None, None, http)


def _domain(settings: LoginSettings) -> str:
    """What simple-salesforce calls the domain (``login``, ``acme.my``); it only uses it to
    print the authorize URL when a user has not approved the connected app."""
    host = urlsplit(settings.login_url).hostname or ""
    return host.removesuffix(".salesforce.com")


def _assertion(settings: LoginSettings, credentials: dict[str, Any]) -> str:
    claims = {"iss": credentials["clientId"], "sub": credentials["username"],
              "aud": settings.login_url, "exp": int(time.time()) + JWT_LIFETIME_S}
    try:
        return jwt.encode(claims, credentials["privateKey"], algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError):
        raise SalesforceAuthenticationFailed(
            "INVALID_PRIVATE_KEY", "privateKey is not a usable RSA private key (PEM)") from None


class SalesforceSession:
    """The live ``Salesforce`` client of one connector, logged in on first use."""

    def __init__(self, settings: LoginSettings, credentials: dict[str, Any],
                 http: requests.Session) -> None:
        self._settings = settings
        self._credentials = credentials
        self.http = http
        self._client: Salesforce | None = None
        self._lock = threading.Lock()

    def client(self) -> Salesforce:
        with self._lock:
            if self._client is None:
                self._client = self._login()
            return self._client

    def call(self, action: Callable[[Salesforce], T]) -> T:
        """Run ``action``; on ``INVALID_SESSION_ID`` log in again once and run it again.

        A second expiry right after a fresh login propagates (the session is refused for
        another reason); a refused re-login raises ``SessionLost``.
        """
        client = self.client()
        try:
            return action(client)
        except SalesforceExpiredSession:
            client = self._renew(client)
        return action(client)

    def _renew(self, stale: Salesforce) -> Salesforce:
        with self._lock:
            if self._client is stale or self._client is None:
                try:
                    self._client = self._login()
                except SalesforceAuthenticationFailed as exc:
                    self._client = None
                    raise SessionLost(exc) from None
            return self._client

    def _login(self) -> Salesforce:
        session_id, instance = login(self._settings, self._credentials, self.http)
        return Salesforce(session_id=session_id, session=self.http,
                          instance_url=self._settings.instance_url or f"https://{instance}",
                          version=self._settings.api_version)
