"""The credential vault: AES-256-GCM sealing, master key handling, masking."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from integrationos.connectors.credentials import (
    CredentialsUnreadable,
    CredentialVault,
    MasterKeyInvalid,
    mask,
    retire_keys,
    rotate_key_file,
)
from integrationos.settings import Settings

SECRET = "p@ss-w0rd-do-not-leak"
CREDENTIALS = {"username": "ios", "password": SECRET}


def settings_for(data_dir: Path, master_key: str = "") -> Settings:
    return dataclasses.replace(Settings.from_env(), data_dir=data_dir, master_key=master_key)


def test_seal_then_open_round_trips(tmp_path: Path) -> None:
    vault = CredentialVault.from_settings(settings_for(tmp_path))
    sealed = vault.seal(CREDENTIALS)
    assert set(sealed) == {"keyId", "nonce", "ciphertext"}
    assert isinstance(sealed["ciphertext"], bytes)
    assert SECRET.encode() not in sealed["ciphertext"]
    assert vault.open(sealed) == CREDENTIALS


def test_every_seal_uses_a_fresh_nonce(tmp_path: Path) -> None:
    vault = CredentialVault.from_settings(settings_for(tmp_path))
    first, second = vault.seal(CREDENTIALS), vault.seal(CREDENTIALS)
    assert len(first["nonce"]) == 12
    assert first["nonce"] != second["nonce"]
    assert first["ciphertext"] != second["ciphertext"]


def test_master_key_from_settings_and_its_id(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    vault = CredentialVault.from_settings(settings_for(tmp_path, base64.b64encode(key).decode()))
    assert vault.key_id == hashlib.sha256(key).hexdigest()[:16]
    assert vault.seal({})["keyId"] == vault.key_id
    assert not (tmp_path / "master.key").exists()


@pytest.mark.parametrize("bad", ["not base64!!", base64.b64encode(b"short").decode()])
def test_invalid_master_key_is_refused_without_echoing_it(tmp_path: Path, bad: str) -> None:
    with pytest.raises(MasterKeyInvalid) as caught:
        CredentialVault.from_settings(settings_for(tmp_path, bad))
    assert bad not in str(caught.value)


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = CredentialVault.from_settings(settings_for(data_dir))
    key_file = data_dir / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = base64.b64decode(key_file.read_text())
    assert len(key) == 32
    assert first.key_id == hashlib.sha256(key).hexdigest()[:16]
    second = CredentialVault.from_settings(settings_for(data_dir))
    assert second.key_id == first.key_id
    assert second.open(first.seal(CREDENTIALS)) == CREDENTIALS
    assert [p.name for p in data_dir.iterdir()] == ["master.key"]


def test_another_key_cannot_open_and_says_which_key_sealed(tmp_path: Path) -> None:
    sealed = CredentialVault(secrets.token_bytes(32)).seal(CREDENTIALS)
    other = CredentialVault(secrets.token_bytes(32))
    with pytest.raises(CredentialsUnreadable, match=sealed["keyId"]) as caught:
        other.open(sealed)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_tampering_is_detected(tmp_path: Path, field: str) -> None:
    vault = CredentialVault(secrets.token_bytes(32))
    sealed = vault.seal(CREDENTIALS)
    altered = bytearray(sealed[field])
    altered[0] ^= 1
    with pytest.raises(CredentialsUnreadable, match="integrity"):
        vault.open({**sealed, field: bytes(altered)})


def test_key_id_is_bound_as_associated_data() -> None:
    """A blob relabelled with this vault's id (e.g. copied between installs) still fails."""
    key = secrets.token_bytes(32)
    vault = CredentialVault(key)
    nonce = secrets.token_bytes(12)
    sealed_elsewhere = AESGCM(key).encrypt(nonce, json.dumps(CREDENTIALS).encode(), b"0" * 16)
    with pytest.raises(CredentialsUnreadable):
        vault.open({"keyId": vault.key_id, "nonce": nonce, "ciphertext": sealed_elsewhere})


def test_a_vault_opens_with_every_key_and_seals_with_the_first(tmp_path) -> None:
    path = tmp_path / "master.key"
    old = CredentialVault.from_settings(_settings(tmp_path))
    old_id, sealed_old = old.key_id, old.seal(CREDENTIALS)
    new_id = rotate_key_file(path)
    rotated = CredentialVault.from_settings(_settings(tmp_path))
    assert rotated.key_id == new_id != old_id
    assert rotated.open(sealed_old) == CREDENTIALS
    assert old.open(rotated.seal(CREDENTIALS)) == CREDENTIALS  # re-reads the rotated file
    assert old.key_id == new_id  # and seals with the new key from then on
    assert retire_keys(path) == [old_id]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(CredentialsUnreadable):
        CredentialVault.from_settings(_settings(tmp_path)).open(sealed_old)


def _settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(Settings.from_env(), data_dir=tmp_path, master_key="")


def test_mask_hides_every_value() -> None:
    assert mask({"username": "ios", "password": SECRET}) == {
        "username": "********",
        "password": "********",
    }
    assert mask({}) == {}


def test_repr_shows_no_key_material() -> None:
    key = secrets.token_bytes(32)
    text = repr(CredentialVault(key))
    assert key.hex() not in text
    assert base64.b64encode(key).decode() not in text
    assert "key_id=" in text
