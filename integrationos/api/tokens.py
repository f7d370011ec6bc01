"""JWT bearer tokens, the alternative to API keys for callers with their own identity provider.

Which algorithm a token may use is decided by the configuration, never by the token alone:
HS256 only with ``IOS_JWT_HS256_SECRET``, RS256/ES256 only with a public key of the
configured JWKS whose ``kid`` (and key type) match. So neither ``alg: none`` nor an HS256
token "signed" with a public RSA key can pass. ``exp`` is required; ``nbf``, ``aud`` and
``iss`` are checked (``aud``/``iss`` required when configured). The platform's own claims
are ``tenant``, ``roles`` (a non-empty subset of the four roles) and, optionally,
``environments`` (default: all).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import jwt

from integrationos.api.context import ALL_ENVIRONMENTS, ROLES, Principal
from integrationos.settings import Settings

ASYMMETRIC = ("RS256", "ES256")
LEEWAY_SECONDS = 5  # clock skew between the token's issuer and this process
JWKS_URL_CACHE_SECONDS = 300
MAX_SUBJECT = 200


class InvalidToken(Exception):
    """Any reason a token is refused; the reason is for logs of the caller's tests, the
    client always gets the same 401."""


def _string_list(claims: dict[str, Any], name: str, allowed: frozenset[str] | tuple[str, ...],
                 default: frozenset[str] | None = None) -> frozenset[str]:
    value = claims.get(name)
    if value is None and default is not None:
        return default
    if (not isinstance(value, list) or not value
            or not all(isinstance(item, str) and item in allowed for item in value)):
        raise InvalidToken(f"claim {name!r} must be a non-empty list of {sorted(allowed)}")
    return frozenset(value)


class _FileJwks:
    """A JWKS file, re-read when it changes, so keys rotate without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._keys: jwt.PyJWKSet | None = None
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> jwt.PyJWK:
        with self._lock:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime, stat.st_size)
            if stamp != self._stamp:
                self._keys = jwt.PyJWKSet.from_dict(json.loads(self.path.read_text()))
                self._stamp = stamp
            assert self._keys is not None
            return _pick(self._keys.keys, kid)


class _UrlJwks:
    """A JWKS at an https URL, fetched by PyJWT's client and cached for five minutes."""

    def __init__(self, url: str) -> None:
        self._client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=JWKS_URL_CACHE_SECONDS,
                                       timeout=5)

    def key(self, kid: str | None) -> jwt.PyJWK:
        return _pick(self._client.get_signing_keys(), kid)


def _pick(keys: list[jwt.PyJWK], kid: str | None) -> jwt.PyJWK:
    """The key named by ``kid``; without a kid, the only key of the set."""
    if kid is None:
        if len(keys) == 1:
            return keys[0]
        raise InvalidToken("the token names no kid and the JWKS holds several keys")
    for key in keys:
        if key.key_id == kid:
            return key
    raise InvalidToken("no key of the JWKS has the token's kid")


class TokenVerifier:
    """Verifies bearer tokens against the configured secret and JWKS (blocking: the JWKS may
    be fetched; run it in a thread)."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_hs256_secret
        self._audience = settings.jwt_audience or None
        self._issuer = settings.jwt_issuer or None
        source = settings.jwt_jwks
        self._jwks: _FileJwks | _UrlJwks | None = None
        if source.startswith("https://"):
            self._jwks = _UrlJwks(source)
        elif source:
            self._jwks = _FileJwks(Path(source))

    @property
    def enabled(self) -> bool:
        return bool(self._secret) or self._jwks is not None

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            key = self._key_for(header)
            claims = jwt.decode(
                token, key, algorithms=[header["alg"]], audience=self._audience,
                issuer=self._issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"] + ["aud"] * bool(self._audience)
                         + ["iss"] * bool(self._issuer)},
            )
        except (jwt.PyJWTError, OSError, ValueError, KeyError) as exc:
            raise InvalidToken(str(exc)[:200]) from None
        tenant, subject = claims.get("tenant"), claims.get("sub")
        if not isinstance(tenant, str) or not tenant:
            raise InvalidToken("claim 'tenant' must be a non-empty string")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT:
            raise InvalidToken(f"claim 'sub' must be a string of 1 to {MAX_SUBJECT} characters")
        return Principal(
            tenant=tenant,
            credential=f"jwt:{subject}",
            roles=_string_list(claims, "roles", ROLES),
            environments=_string_list(claims, "environments", tuple(sorted(ALL_ENVIRONMENTS)),
                                      ALL_ENVIRONMENTS),
        )

    def _key_for(self, header: dict[str, Any]) -> Any:
        alg = header.get("alg")
        if alg == "HS256" and self._secret:
            return self._secret
        if alg in ASYMMETRIC and self._jwks is not None:
            key = self._jwks.key(header.get("kid"))
            if key.algorithm_name != alg:
                raise InvalidToken("the JWKS key is not for the token's algorithm")
            return key
        raise InvalidToken(f"algorithm {alg!r} is not accepted by this configuration")
