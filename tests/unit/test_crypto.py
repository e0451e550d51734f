"""Credentials at rest: Fernet values tagged with their key's id, rotation, the key file, and
paths resolved against the project rather than the current directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from messaging_whatsapp.config import Settings, base_dir
from messaging_whatsapp.crypto import (
    Cipher,
    CredentialsError,
    MissingKeyError,
    key_id,
    read_key_file,
    token_key_id,
    write_key_file,
)


def test_a_value_names_its_key_and_rotates_to_the_newest() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Cipher([old]).encrypt("segredo")
    assert token_key_id(token) == key_id(old)
    rotated_cipher = Cipher([new, old])
    assert rotated_cipher.decrypt(token) == "segredo"
    assert not rotated_cipher.is_current(token)
    rotated = rotated_cipher.rotate(token)
    assert token_key_id(rotated) == key_id(new)
    assert rotated_cipher.rotate(rotated) == rotated
    assert Cipher([new]).decrypt(rotated) == "segredo"
    with pytest.raises(MissingKeyError, match=key_id(old)):
        Cipher([new]).decrypt(token)


def test_values_from_before_key_ids_still_decrypt_and_rotate() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    legacy = Fernet(old.encode()).encrypt(b"antigo").decode()
    assert token_key_id(legacy) is None
    assert Cipher([new, old]).decrypt(legacy) == "antigo"
    assert Cipher([new]).decrypt(Cipher([new, old]).rotate(legacy)) == "antigo"
    with pytest.raises(CredentialsError):
        Cipher([new]).decrypt(legacy)


def test_a_cipher_reads_its_key_file_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "encryption.key"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    write_key_file(path, [old])
    assert (path.stat().st_mode & 0o777) == 0o600
    running = Cipher(read_key_file(path), path)
    write_key_file(path, [new, old])
    # Another process rotated with the new key: this one reads it, and encrypts with it too.
    assert running.decrypt(Cipher([new]).encrypt("x")) == "x"
    assert token_key_id(running.encrypt("y")) == key_id(new)


def test_settings_without_a_key_make_none(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, whatsapp_encryption_key=None)  # type: ignore[call-arg]
    with pytest.raises(CredentialsError, match="does not exist"):
        Cipher.from_settings(settings)
    assert not (tmp_path / "encryption.key").exists()


def test_environment_keys_win(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(_env_file=None, data_dir=tmp_path, whatsapp_encryption_key=SecretStr(key))  # type: ignore[call-arg]
    assert Cipher([key]).decrypt(Cipher.from_settings(settings).encrypt("y")) == "y"
    assert not (tmp_path / "encryption.key").exists()


def test_relative_paths_are_the_projects_whatever_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None, data_dir=Path("data"), database_url="sqlite:///./data/x.db")  # type: ignore[call-arg]
    project = Path(__file__).resolve().parents[2]
    assert base_dir() == project
    assert settings.data_dir == project / "data"
    assert settings.database_url == f"sqlite:///{project}/data/x.db"
    assert Settings(_env_file=None, data_dir=tmp_path).data_dir == tmp_path  # type: ignore[call-arg]
