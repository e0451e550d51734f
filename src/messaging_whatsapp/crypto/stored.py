"""The encrypted values in the database as a whole: which key each needs, the check that the
configured keys fit them when an engine opens, and re-encrypting them all with the newest key.

Every column that holds values of the cipher is listed in ENCRYPTED_COLUMNS (by name: this layer
sits below the domains that own the tables). A new encrypted column must be added there, or
`rotate-keys` would leave it under an old key and the start check would not look at it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import column, inspect, select, table, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import TableClause

from messaging_whatsapp.config import Settings
from messaging_whatsapp.crypto import (
    Cipher,
    CredentialsError,
    configured_keys,
    create_key_file,
    key_file,
    token_key_id,
)

logger = logging.getLogger(__name__)
LEGACY = "(no key id)"


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """A column of Fernet values, and what they are, for messages."""

    table: str
    column: str
    label: str

    def clause(self) -> TableClause:
        """The table with its id and the encrypted column (enough to read and rewrite values)."""
        return table(self.table, column("id"), column(self.column))


ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    EncryptedColumn("whatsapp_instances", "credentials_encrypted", "instance credentials"),
    EncryptedColumn("tenants", "suppression_key", "tenant suppression keys"),
    EncryptedColumn("webhook_subscriptions", "secret_encrypted", "webhook subscription secrets"),
    EncryptedColumn("assistant_settings", "api_key_encrypted", "tenant AI keys"),
)


@dataclass
class KeyUsage:
    """How many stored values each key encrypted, per column; values from before key ids are kept
    whole (they can only be told apart by trying the keys)."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    legacy: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Every encrypted value."""
        return sum(self.counts.values())

    def by_key(self) -> dict[str, dict[str, int]]:
        """Key id (or LEGACY) -> column label -> how many values."""
        result: dict[str, dict[str, int]] = {}
        for (kid, label), count in sorted(self.counts.items()):
            result.setdefault(kid, {})[label] = count
        return result

    def missing(self, cipher: Cipher) -> dict[str, dict[str, int]]:
        """The values the cipher cannot decrypt, by the key they need (LEGACY: none of ours fits)."""
        result = {
            kid: labels for kid, labels in self.by_key().items() if kid != LEGACY and not cipher.knows(kid)
        }
        unreadable: Counter[str] = Counter()
        for label, token in self.legacy:
            try:
                cipher.decrypt(token)
            except CredentialsError:
                unreadable[label] += 1
        if unreadable:
            result[LEGACY] = dict(unreadable)
        return result


async def _has_table(connection: AsyncConnection, name: str) -> bool:
    return await connection.run_sync(lambda sync: inspect(sync).has_table(name))


async def survey(engine: AsyncEngine) -> KeyUsage:
    """Which key each encrypted value needs (a database not migrated yet has none)."""
    usage = KeyUsage()
    async with engine.connect() as connection:
        for encrypted in ENCRYPTED_COLUMNS:
            if not await _has_table(connection, encrypted.table):
                continue
            values = encrypted.clause().c[encrypted.column]
            for (token,) in await connection.execute(select(values).where(values.is_not(None))):
                kid = token_key_id(token)
                usage.counts[(kid or LEGACY, encrypted.label)] += 1
                if kid is None:
                    usage.legacy.append((encrypted.label, token))
    return usage


def _describe(missing: dict[str, dict[str, int]]) -> str:
    parts = []
    for kid, labels in missing.items():
        what = " and ".join(f"{count} {label}" for label, count in labels.items())
        if kid == LEGACY:
            parts.append(f"{what} from before key ids, which none of the configured keys decrypts")
        else:
            parts.append(f"{what} encrypted with key {kid}")
    return "; ".join(parts)


async def open_cipher(settings: Settings, engine: AsyncEngine) -> Cipher:
    """The process's cipher, once the configured keys are known to decrypt every stored value.

    The first key is made (in DATA_DIR/encryption.key) only while nothing is encrypted: a missing
    or wrong key file must stop the engine with the id of the key it needs, not be replaced by a
    new key under which every credential is unreadable (and every webhook a 500).
    """
    keys, source = configured_keys(settings)
    usage = await survey(engine)
    path = key_file(settings)
    if not keys:
        if usage.total:
            raise CredentialsError(
                f"cannot start: {_describe(usage.by_key())}, but there is no key: WHATSAPP_ENCRYPTION_KEY "
                f"is unset and {path} does not exist (DATA_DIR is {settings.data_dir}). Restore the key "
                "file there, set WHATSAPP_ENCRYPTION_KEY, or point DATA_DIR at the directory that holds it"
            )
        keys, source = create_key_file(path), path
    cipher = Cipher(keys, source)
    missing = usage.missing(cipher)
    if missing:
        where = str(source) if source is not None else "WHATSAPP_ENCRYPTION_KEY"
        raise CredentialsError(
            f"cannot start: {_describe(missing)}, and that key is not among the configured keys "
            f"({', '.join(cipher.key_ids)}, from {where}). Add it back (older keys go after the newest, "
            "one per line in the key file or comma-separated in WHATSAPP_ENCRYPTION_KEY)"
        )
    return cipher


@dataclass
class ColumnRotation:
    """What rotating one column did."""

    label: str
    values: int = 0
    rotated: int = 0
    already_current: int = 0
    # Changed by someone else between our read and our write: left as they wrote it (run again).
    changed_meanwhile: int = 0


Progress = Callable[[ColumnRotation], None]


async def rotate_all(
    engine: AsyncEngine, cipher: Cipher, *, batch_size: int = 500, progress: Progress | None = None
) -> list[ColumnRotation]:
    """Re-encrypt every stored value that is not under the newest key, one transaction per batch
    of rows; idempotent (a second run rewrites nothing). A value changed meanwhile is not
    overwritten: each write is conditional on the value read."""
    report = []
    for encrypted in ENCRYPTED_COLUMNS:
        rotation = ColumnRotation(encrypted.label)
        report.append(rotation)
        clause = encrypted.clause()
        ids, values = clause.c.id, clause.c[encrypted.column]
        async with engine.connect() as connection:
            if not await _has_table(connection, encrypted.table):
                continue
        last_id = ""
        while True:
            async with engine.begin() as connection:
                rows = (
                    await connection.execute(
                        select(ids, values)
                        .where(ids > last_id, values.is_not(None))
                        .order_by(ids)
                        .limit(batch_size)
                    )
                ).all()
                if not rows:
                    break
                for row_id, token in rows:
                    rotation.values += 1
                    if cipher.is_current(token):
                        rotation.already_current += 1
                        continue
                    written = await connection.execute(
                        update(clause)
                        .where(ids == row_id, values == token)
                        .values({encrypted.column: cipher.rotate(token)})
                    )
                    if written.rowcount:
                        rotation.rotated += 1
                    else:
                        rotation.changed_meanwhile += 1
                last_id = rows[-1][0]
            if progress is not None:
                progress(rotation)
    return report
