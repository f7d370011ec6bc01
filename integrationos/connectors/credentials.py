"""The credential vault: connector secrets are stored and logged only as AES-256-GCM blobs.

The master key comes from ``IOS_MASTER_KEY`` (base64 of 32 bytes) or, for a single-node
install, from ``<data_dir>/master.key``, created 0600 on first use. Each sealed blob
carries the id of the key that sealed it, so a vault given the wrong key says so instead
of failing with a bare tag error, and the id is bound as associated data so a blob cannot
be relabelled. Nothing here puts a credential value in a repr or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from integrationos.settings import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
MASK = "********"
KEY_FILE_NAME = "master.key"


class MasterKeyInvalid(ValueError):
    """The configured master key is not base64 of 32 bytes (the key is never echoed)."""


class CredentialsUnreadable(Exception):
    """A sealed blob cannot be opened: another key sealed it, or it was altered."""


def mask(credentials: dict[str, Any]) -> dict[str, str]:
    """What the API shows for stored credentials: which fields are set, never their values."""
    return dict.fromkeys(credentials, MASK)


class CredentialVault:
    """Seals and opens credential dicts with one master key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise MasterKeyInvalid(f"master key must be {KEY_BYTES} bytes, got {len(key)}")
        self.key_id = hashlib.sha256(key).hexdigest()[:16]
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialVault:
        if settings.master_key:
            return cls(_decode_key(settings.master_key, "IOS_MASTER_KEY"))
        return cls(_load_or_create_key_file(settings.data_dir / KEY_FILE_NAME))

    def seal(self, credentials: dict[str, Any]) -> dict[str, Any]:
        plain = json.dumps(credentials, separators=(",", ":"), sort_keys=True).encode()
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plain, self.key_id.encode())
        return {"keyId": self.key_id, "nonce": nonce, "ciphertext": ciphertext}

    def open(self, sealed: dict[str, Any]) -> dict[str, Any]:
        key_id = sealed.get("keyId")
        if key_id != self.key_id:
            raise CredentialsUnreadable(
                f"credentials were sealed with master key {key_id!r}; this vault holds "
                f"{self.key_id!r} (was IOS_MASTER_KEY or master.key changed?)"
            )
        try:
            plain = self._aead.decrypt(sealed["nonce"], sealed["ciphertext"], key_id.encode())
        except (InvalidTag, KeyError, TypeError, ValueError):
            raise CredentialsUnreadable(
                f"credentials sealed with key {key_id!r} fail the integrity check"
            ) from None
        return json.loads(plain)

    def __repr__(self) -> str:
        return f"CredentialVault(key_id={self.key_id!r})"


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyInvalid(f"{source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyInvalid(f"{source} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def _load_or_create_key_file(path: Path) -> bytes:
    """Read the key file, or create it (0600) if missing.

    The key is written to a private temporary file and hard-linked into place, so two
    processes starting together agree on one key and neither reads a half-written file.
    """
    if path.exists():
        return _decode_key(path.read_text(), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(key).decode() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(draft, path)
    except FileExistsError:
        return _decode_key(path.read_text(), str(path))
    finally:
        draft.unlink(missing_ok=True)
    return key
