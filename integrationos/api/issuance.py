"""The events behind an API key's life, shared by the admin API and the CLI.

The key itself exists only in ``IssuedKey`` (shown once by the caller); the event carries its
SHA-256, a short display prefix, and what the key may do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from integrationos.api.auth import hash_key, new_api_key
from integrationos.api.context import ALL_ENVIRONMENTS, ROLES
from integrationos.topics import event_types as t
from integrationos.topics.envelope import Event

PREFIX_LENGTH = 12  # "ip_live_" and four random characters: enough to tell keys apart
ENVIRONMENT_ORDER = ("DEV", "QA", "PROD")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str = field(repr=False)
    event: Event = field(repr=False)


def issue(tenant: str, name: str, roles: Iterable[str],
          environments: Iterable[str] = ALL_ENVIRONMENTS, live: bool = True) -> IssuedKey:
    """A new key and its ``tenant.api_key_issued`` event; ``ValueError`` for unknown roles or
    environments, or none of either."""
    role_list = sorted(set(roles))
    env_set = set(environments)
    if not role_list or not set(role_list) <= set(ROLES):
        raise ValueError(f"roles must be a non-empty subset of {', '.join(ROLES)}")
    if not env_set or not env_set <= ALL_ENVIRONMENTS:
        raise ValueError(f"environments must be a non-empty subset of "
                         f"{', '.join(ENVIRONMENT_ORDER)}")
    key = new_api_key(live=live)
    key_id = "key_" + uuid.uuid4().hex[:20]
    event = Event(t.API_KEY_ISSUED, tenant, key_id, {
        "keyId": key_id, "keyHash": hash_key(key), "prefix": key[:PREFIX_LENGTH],
        "name": name, "roles": role_list,
        "environments": [env for env in ENVIRONMENT_ORDER if env in env_set], "live": live,
    })
    return IssuedKey(key_id, key, event)


def revocation(tenant: str, key_id: str) -> Event:
    return Event(t.API_KEY_REVOKED, tenant, key_id, {"keyId": key_id})
