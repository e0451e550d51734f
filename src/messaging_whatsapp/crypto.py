"""Encryption of credentials at rest: Fernet with key rotation (MultiFernet).

WHATSAPP_ENCRYPTION_KEY holds one or more comma-separated keys, newest first: new values are
encrypted with the first, old values still decrypt with any. Without it, the embedded default
keeps a generated key in the data directory and says so once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from messaging_whatsapp.config import Settings

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "encryption.key"
# Where a database session carries the process's cipher (Session.info; see EngineContext).
CIPHER_KEY = "cipher"


class CredentialsError(RuntimeError):
    """Credentials could not be decrypted with any configured key."""


def _key_file_keys(data_dir: Path) -> list[str]:
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key().decode()
        # Create with 0600 so the key is never world-readable, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        logger.warning(
            "created a new encryption key at %s; set WHATSAPP_ENCRYPTION_KEY in production and keep it safe",
            path,
        )
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class Cipher:
    """Encrypts and decrypts credential blobs with the configured keys."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise CredentialsError("no encryption key configured")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        """Keys from WHATSAPP_ENCRYPTION_KEY, else the embedded key file (created on first run)."""
        if settings.whatsapp_encryption_key is not None:
            raw = settings.whatsapp_encryption_key.get_secret_value()
            return cls([key.strip() for key in raw.split(",") if key.strip()])
        return cls(_key_file_keys(settings.data_dir))

    def encrypt(self, plaintext: str) -> str:
        """Encrypt with the newest key."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt with whichever configured key made the token."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise CredentialsError("credentials cannot be decrypted with the configured keys") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key."""
        return self._fernet.rotate(token.encode()).decode()
