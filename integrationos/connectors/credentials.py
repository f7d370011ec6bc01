"""The credential vault: connector secrets are stored and logged only as AES-256-GCM blobs.

The master key comes from ``IOS_MASTER_KEY`` (base64 of 32 bytes) or, for a single-node
install, from ``<data_dir>/master.key``, created 0600 on first use. Each sealed blob
carries the id of the key that sealed it, so a vault given the wrong key says so instead
of failing with a bare tag error, and the id is bound as associated data so a blob cannot
be relabelled. Nothing here puts a credential value in a repr or an exception message.

Key rotation: both sources may hold several keys (comma-separated in the variable, one per
line in the file), the first one sealing and all of them opening. ``integrationos keys
rotate`` puts a new key first and re-seals every connector's credentials under it; a
running process that meets a key id it does not hold re-reads its key source once, so it
follows a rotation of the key file without a restart.
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


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class CredentialVault:
    """Seals with the first of its master keys; opens with any of them."""

    def __init__(self, key: bytes | list[bytes], key_file: Path | None = None) -> None:
        self._key_file = key_file
        self._key_file_stamp = _stamp(key_file)
        self._use(key if isinstance(key, list) else [key])

    def _use(self, keys: list[bytes]) -> None:
        if not keys:
            raise MasterKeyInvalid("no master key")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise MasterKeyInvalid(f"master key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aeads = {key_id_of(key): AESGCM(key) for key in keys}
        self.key_id = key_id_of(keys[0])

    @property
    def key_ids(self) -> list[str]:
        return list(self._aeads)

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialVault:
        if settings.master_key:
            return cls(_decode_keys(settings.master_key, "IOS_MASTER_KEY"))
        path = settings.data_dir / KEY_FILE_NAME
        return cls(_load_or_create_key_file(path), key_file=path)

    def _follow_key_file(self, force: bool = False) -> None:
        """Re-read a rotated key file (checked by its mtime and size: one stat per call)."""
        if self._key_file is None:
            return
        stamp = _stamp(self._key_file)
        if force or stamp != self._key_file_stamp:
            self._use(_read_key_file(self._key_file))
            self._key_file_stamp = stamp

    def seal(self, credentials: dict[str, Any]) -> dict[str, Any]:
        self._follow_key_file()
        plain = json.dumps(credentials, separators=(",", ":"), sort_keys=True).encode()
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._aeads[self.key_id].encrypt(nonce, plain, self.key_id.encode())
        return {"keyId": self.key_id, "nonce": nonce, "ciphertext": ciphertext}

    def open(self, sealed: dict[str, Any]) -> dict[str, Any]:
        key_id = sealed.get("keyId")
        if key_id not in self._aeads:
            self._follow_key_file(force=True)  # the key file may have been rotated meanwhile
        aead = self._aeads.get(key_id)  # type: ignore[arg-type]
        if aead is None:
            raise CredentialsUnreadable(
                f"credentials were sealed with master key {key_id!r}; this vault holds "
                f"{self.key_ids!r} (was IOS_MASTER_KEY or master.key changed?)"
            )
        try:
            plain = aead.decrypt(sealed["nonce"], sealed["ciphertext"], key_id.encode())
        except (InvalidTag, KeyError, TypeError, ValueError):
            raise CredentialsUnreadable(
                f"credentials sealed with key {key_id!r} fail the integrity check"
            ) from None
        return json.loads(plain)

    def __repr__(self) -> str:
        return f"CredentialVault(key_id={self.key_id!r})"


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None or not path.exists():
        return None
    status = path.stat()
    return status.st_mtime_ns, status.st_size


def _decode_keys(text: str, source: str) -> list[bytes]:
    """Several keys, comma- or newline-separated, the sealing one first."""
    parts = [part for part in text.replace(",", "\n").split() if part]
    return [_decode_key(part, source) for part in parts]


def _read_key_file(path: Path) -> list[bytes]:
    return _decode_keys(path.read_text(), str(path))


def rotate_key_file(path: Path) -> str:
    """Put a new key first in the key file (atomically, 0600); return its id."""
    keys = [secrets.token_bytes(KEY_BYTES), *_read_key_file(path)]
    _write_key_file(path, keys)
    return key_id_of(keys[0])


def retire_keys(path: Path) -> list[str]:
    """Keep only the sealing key in the key file; return the ids removed."""
    keys = _read_key_file(path)
    _write_key_file(path, keys[:1])
    return [key_id_of(key) for key in keys[1:]]


def _write_key_file(path: Path, keys: list[bytes]) -> None:
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(base64.b64encode(key).decode() + "\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(draft, path)


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyInvalid(f"{source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyInvalid(f"{source} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def _load_or_create_key_file(path: Path) -> list[bytes]:
    """Read the key file, or create it (0600) if missing.

    The key is written to a private temporary file and hard-linked into place, so two
    processes starting together agree on one key and neither reads a half-written file.
    """
    if path.exists():
        return _read_key_file(path)
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
        return _read_key_file(path)
    finally:
        draft.unlink(missing_ok=True)
    return [key]
