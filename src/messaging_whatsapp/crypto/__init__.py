"""Encryption of credentials at rest: Fernet with key rotation, each value tagged with its key's id.

WHATSAPP_ENCRYPTION_KEY holds one or more comma-separated keys, newest first; without it the keys
are the lines of DATA_DIR/encryption.key, newest first. New values are encrypted with the newest
key and stored as `<key id>:<Fernet token>`, the key id being the first 8 hex digits of the key's
SHA-256 (it says which key a value needs without revealing anything of it). Values stored before
key ids existed have no prefix and decrypt with whichever key made them.

A process whose keys come from the key file reads it again when the file changes (before it
encrypts) and when it meets a value of a key it does not know (before it gives up), so a key
prepended by `rotate-keys --new-key` is used by running engines without a restart. Whether the
keys fit the stored data is checked once when the engine opens (crypto/stored.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from messaging_whatsapp.config import Settings

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "encryption.key"
# Where a database session carries the process's cipher (Session.info; see EngineContext).
CIPHER_KEY = "cipher"
KEY_ID_LENGTH = 8


class CredentialsError(RuntimeError):
    """Credentials could not be decrypted with any configured key."""


class MissingKeyError(CredentialsError):
    """A stored value needs a key that is not configured; `key_id` names it."""

    def __init__(self, key_id: str, configured: list[str]) -> None:
        super().__init__(
            f"a value is encrypted with key {key_id}, which is not configured "
            f"(configured keys: {', '.join(configured) or 'none'})"
        )
        self.key_id = key_id


def key_id(key: str) -> str:
    """The id of a Fernet key: the first hex digits of its SHA-256."""
    return hashlib.sha256(key.strip().encode()).hexdigest()[:KEY_ID_LENGTH]


def token_key_id(token: str) -> str | None:
    """The id of the key a stored value was encrypted with; None for a value from before key ids."""
    prefix, separator, _ = token.partition(":")
    return prefix if separator else None


def new_key() -> str:
    """A fresh random Fernet key."""
    return Fernet.generate_key().decode()


def key_file(settings: Settings) -> Path:
    """Where the embedded default keeps its keys (DATA_DIR is absolute already)."""
    return settings.data_dir / KEY_FILE_NAME


def read_key_file(path: Path) -> list[str]:
    """The keys of a key file, newest first ([] when there is no file); `#` starts a comment line."""
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def write_key_file(path: Path, keys: list[str]) -> None:
    """Write the keys (newest first) atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created with 0600 so the keys are never world-readable, even briefly.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(key + "\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def create_key_file(path: Path) -> list[str]:
    """Make the first key (only when no encrypted data exists: see crypto/stored.py); if another
    process made it first, use theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key_file(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    logger.warning(
        "created a new encryption key %s at %s; back it up, or set WHATSAPP_ENCRYPTION_KEY in production",
        key_id(key),
        path,
    )
    return [key]


def configured_keys(settings: Settings) -> tuple[list[str], Path | None]:
    """The keys, newest first, and the key file they came from (None: WHATSAPP_ENCRYPTION_KEY).
    No key file yet gives no keys; nothing is created here."""
    if settings.whatsapp_encryption_key is not None:
        raw = settings.whatsapp_encryption_key.get_secret_value()
        return [key.strip() for key in raw.split(",") if key.strip()], None
    path = key_file(settings)
    return read_key_file(path), path


class Cipher:
    """Encrypts with the newest key and decrypts with the key a value names."""

    def __init__(self, keys: list[str], source: Path | None = None) -> None:
        self._source = source
        self._loaded_stamp = self._stamp()
        self._fernets: dict[str, Fernet] = {}
        self._use(keys)

    def _use(self, keys: list[str]) -> None:
        if not keys:
            raise CredentialsError("no encryption key configured")
        fernets: dict[str, Fernet] = {}
        for number, key in enumerate(keys, 1):
            try:
                fernets[key_id(key)] = Fernet(key.strip().encode())
            except ValueError:
                where = self._source or "WHATSAPP_ENCRYPTION_KEY"
                raise CredentialsError(f"key {number} of {where} is not a Fernet key") from None
        self._newest = key_id(keys[0])
        # Keys a process learned stay known until it stops: a value rotated meanwhile still reads.
        self._fernets = {**self._fernets, **fernets}
        self._order = list(fernets)
        self._all = MultiFernet(list(fernets.values()))

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        """The configured keys (CredentialsError without any: the engine context makes the first
        key only when nothing is encrypted yet)."""
        keys, source = configured_keys(settings)
        if not keys:
            raise CredentialsError(
                f"no encryption key: WHATSAPP_ENCRYPTION_KEY is unset and {key_file(settings)} does not exist"
            )
        return cls(keys, source)

    @property
    def newest_key_id(self) -> str:
        """The id of the key new values are encrypted with."""
        return self._newest

    @property
    def key_ids(self) -> list[str]:
        """The ids of the configured keys, newest first."""
        return list(self._order)

    @property
    def source(self) -> Path | None:
        """The key file the keys come from (None: WHATSAPP_ENCRYPTION_KEY)."""
        return self._source

    def knows(self, key_id_: str) -> bool:
        """Whether a key with this id is configured (reading the key file again if need be)."""
        if key_id_ not in self._fernets:
            self._reload_if_changed()
        return key_id_ in self._fernets

    def encrypt(self, plaintext: str) -> str:
        """Encrypt with the newest key; the value names the key."""
        self._reload_if_changed()
        return f"{self._newest}:{self._fernets[self._newest].encrypt(plaintext.encode()).decode()}"

    def decrypt(self, token: str) -> str:
        """Decrypt with the key the value names (any configured key for a value without one)."""
        kid = token_key_id(token)
        try:
            if kid is None:
                return self._all.decrypt(token.encode()).decode()
            if not self.knows(kid):
                raise MissingKeyError(kid, self.key_ids)
            return self._fernets[kid].decrypt(token[len(kid) + 1 :].encode()).decode()
        except InvalidToken as exc:
            raise CredentialsError("credentials cannot be decrypted with the configured keys") from exc

    def is_current(self, token: str) -> bool:
        """Whether a value is encrypted with the newest key already."""
        self._reload_if_changed()
        return token_key_id(token) == self._newest

    def rotate(self, token: str) -> str:
        """The value encrypted with the newest key (unchanged when it is already)."""
        return token if self.is_current(token) else self.encrypt(self.decrypt(token))

    def _stamp(self) -> tuple[int, int, int] | None:
        """What changes whenever the key file is rewritten (write_key_file replaces it: a new inode)."""
        try:
            stat = self._source.stat() if self._source is not None else None
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size) if stat is not None else None

    def _reload_if_changed(self) -> None:
        if self._source is None or self._stamp() == self._loaded_stamp:
            return
        self._loaded_stamp = self._stamp()
        keys = read_key_file(self._source)
        if keys:
            self._use(keys)
