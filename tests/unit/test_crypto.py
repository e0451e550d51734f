"""Credentials at rest: Fernet with rotation, and the embedded key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import Cipher, CredentialsError


def test_rotation_keeps_old_values_readable() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Cipher([old]).encrypt("segredo")
    rotated_cipher = Cipher([new, old])
    assert rotated_cipher.decrypt(token) == "segredo"
    assert Cipher([new]).decrypt(rotated_cipher.rotate(token)) == "segredo"
    with pytest.raises(CredentialsError):
        Cipher([new]).decrypt(token)


def test_embedded_default_creates_a_private_key_file_once(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, whatsapp_encryption_key=None)  # type: ignore[call-arg]
    token = Cipher.from_settings(settings).encrypt("x")
    key_file = tmp_path / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Cipher.from_settings(settings).decrypt(token) == "x"


def test_environment_keys_win(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(_env_file=None, data_dir=tmp_path, whatsapp_encryption_key=SecretStr(key))  # type: ignore[call-arg]
    assert Cipher([key]).decrypt(Cipher.from_settings(settings).encrypt("y")) == "y"
    assert not (tmp_path / "encryption.key").exists()
