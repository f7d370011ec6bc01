"""JWT bearer tokens: HS256 with the configured secret, RS256/ES256 from a JWKS file; every
claim the platform relies on is checked, and every refusal is the same 401."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.testclient import TestClient

from integrationos.api.app import create_app
from integrationos.settings import Settings
from tests.api.conftest import ACME_KEY, assert_error
from tests.tls import self_signed

SECRET = "hs256-test-secret-of-at-least-32-bytes!"
AUDIENCE, ISSUER = "integrationos", "https://idp.example"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _jwk(private_key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    return json.loads(algorithm.to_jwk(private_key.public_key())) | {"kid": kid, "use": "sig"}


@pytest.fixture
def jwt_settings(settings: Settings, tmp_path: Path) -> Settings:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [_jwk(RSA_KEY, "rsa-1", "RS256"),
                                         _jwk(EC_KEY, "ec-1", "ES256")]}))
    return dataclasses.replace(settings, jwt_hs256_secret=SECRET, jwt_jwks=str(jwks),
                               jwt_audience=AUDIENCE, jwt_issuer=ISSUER)


@pytest.fixture
def api(jwt_settings: Settings, seed) -> Iterator[TestClient]:
    with TestClient(create_app(jwt_settings)) as test_client:
        yield test_client


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "user-1", "tenant": "acme", "roles": ["viewer"], "aud": AUDIENCE,
            "iss": ISSUER, "iat": now, "exp": now + 300}
    return {k: v for k, v in (base | overrides).items() if v is not None}


def token(alg: str = "HS256", **overrides: Any) -> str:
    key, kid = {"HS256": (SECRET, None), "RS256": (RSA_KEY, "rsa-1"),
                "ES256": (EC_KEY, "ec-1")}[alg]
    return jwt.encode(claims(**overrides), key, algorithm=alg,
                      headers={"kid": kid} if kid else None)


def bearer(raw: str, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}", "X-Tenant-Id": tenant}


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
def test_a_valid_token_is_accepted_with_its_roles(api, alg):
    assert api.get("/v1/connectors", headers=bearer(token(alg))).status_code == 200
    error = assert_error(api.post("/v1/connectors", headers=bearer(token(alg)), json={}),
                         403, "FORBIDDEN")
    assert error["details"] == [{"requiredRole": "developer"}]
    assert api.post("/v1/connectors", headers=bearer(token(alg, roles=["developer"])),
                    json={}).status_code == 422


def _unsigned() -> str:
    return jwt.encode(claims(), None, algorithm="none")


def _hs256_signed_with_the_public_rsa_key() -> str:
    """The classic confusion: the verifier must not use an RSA public key as an HMAC secret."""
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT",
                                                    "kid": "rsa-1"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    signature = hmac.new(pem, header + b"." + body, hashlib.sha256).digest()
    return (header + b"." + body + b"." + jwt.utils.base64url_encode(signature)).decode()


REFUSED = {
    "expired": lambda: token(exp=int(time.time()) - 60),
    "not yet valid": lambda: token(nbf=int(time.time()) + 60),
    "no exp": lambda: token(exp=None),
    "wrong audience": lambda: token(aud="someone-else"),
    "no audience": lambda: token(aud=None),
    "wrong issuer": lambda: token(iss="https://evil.example"),
    "no tenant": lambda: token(tenant=None),
    "no sub": lambda: token(sub=None),
    "no roles": lambda: token(roles=None),
    "unknown role": lambda: token(roles=["root"]),
    "roles not a list": lambda: token(roles="admin"),
    "unknown environment": lambda: token(environments=["STAGING"]),
    "tenant that does not exist": lambda: token(tenant="initech"),
    "wrong secret": lambda: jwt.encode(claims(), "another-secret-of-at-least-32-bytes!",
                                       algorithm="HS256"),
    "unknown kid": lambda: jwt.encode(claims(), RSA_KEY, algorithm="RS256",
                                      headers={"kid": "rsa-2"}),
    "EC key named as RSA": lambda: jwt.encode(claims(), EC_KEY, algorithm="ES256",
                                              headers={"kid": "rsa-1"}),
    "alg none": _unsigned,
    "HS256 with the RSA public key": _hs256_signed_with_the_public_rsa_key,
    "not a JWT": lambda: "not.a.jwt",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_tokens_get_the_same_401(api, case):
    raw = REFUSED[case]()
    response = api.get("/v1/connectors", headers=bearer(raw))
    assert_error(response, 401, "UNAUTHENTICATED")
    assert raw not in response.text


def test_the_tenant_header_must_agree_with_the_token(api, seed):
    assert_error(api.get("/v1/connectors", headers=bearer(token(), tenant="globex")),
                 401, "UNAUTHENTICATED")
    assert_error(api.get("/v1/connectors", headers={"Authorization": f"Bearer {token()}"}),
                 401, "UNAUTHENTICATED")


def test_a_key_and_a_token_together_are_refused(api):
    both = bearer(token()) | {"X-API-Key": ACME_KEY}
    assert_error(api.get("/v1/connectors", headers=both), 401, "UNAUTHENTICATED")


def test_the_environments_claim_limits_the_token(api, seed):
    seed.integration("acme", "int_prod", "p", environment="PROD")
    dev_only = bearer(token(environments=["DEV"]))
    error = assert_error(api.get("/v1/integrations/int_prod", headers=dev_only),
                         403, "FORBIDDEN")
    assert error["details"] == [{"environment": "PROD"}]
    assert api.get("/v1/integrations/int_prod", headers=bearer(token())).status_code == 200


def test_tokens_are_refused_when_nothing_is_configured(client):
    """Without a secret or JWKS no token can be valid, whatever it claims."""
    assert_error(client.get("/v1/connectors", headers=bearer(token())), 401, "UNAUTHENTICATED")


def test_a_rotated_jwks_file_is_read_again(api, jwt_settings):
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed = jwt.encode(claims(), new_key, algorithm="RS256", headers={"kid": "rsa-new"})
    assert_error(api.get("/v1/connectors", headers=bearer(signed)), 401, "UNAUTHENTICATED")
    Path(jwt_settings.jwt_jwks).write_text(json.dumps({"keys": [
        _jwk(new_key, "rsa-new", "RS256"), _jwk(RSA_KEY, "rsa-1-rotated-out", "RS256")]}))
    assert api.get("/v1/connectors", headers=bearer(signed)).status_code == 200


def test_jwt_settings_come_from_the_environment_and_the_secret_is_not_shown(monkeypatch):
    monkeypatch.setenv("IOS_JWT_HS256_SECRET", SECRET)
    monkeypatch.setenv("IOS_JWT_JWKS", "https://idp.example/jwks.json")
    monkeypatch.setenv("IOS_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("IOS_JWT_ISSUER", ISSUER)
    loaded = Settings.from_env()
    assert (loaded.jwt_hs256_secret, loaded.jwt_jwks, loaded.jwt_audience,
            loaded.jwt_issuer) == (SECRET, "https://idp.example/jwks.json", AUDIENCE, ISSUER)
    assert SECRET not in repr(loaded)


def test_a_jwks_at_an_https_url_is_fetched_and_verified(settings, seed, tmp_path, monkeypatch):
    """The identity provider's JWKS over https (a local server whose certificate the client
    must verify): a token signed with a key in it passes, one with an unknown kid does not."""
    cert, key = self_signed(tmp_path / "tls", "jwks-server")
    document = json.dumps({"keys": [_jwk(RSA_KEY, "rsa-1", "RS256")]}).encode()
    fetched: list[str] = []

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # trust the local server's certificate
    url = f"https://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    configured = dataclasses.replace(settings, jwt_jwks=url, jwt_audience=AUDIENCE,
                                     jwt_issuer=ISSUER)
    try:
        with TestClient(create_app(configured)) as client:
            accepted = client.get("/v1/integrations", headers=bearer(token("RS256")))
            assert accepted.status_code == 200, accepted.text
            unknown = jwt.encode(claims(), RSA_KEY, algorithm="RS256",
                                 headers={"kid": "not-in-the-set"})
            assert_error(client.get("/v1/integrations", headers=bearer(unknown)), 401,
                         "UNAUTHENTICATED")
    finally:
        server.shutdown()
    assert fetched and set(fetched) == {"/.well-known/jwks.json"}
