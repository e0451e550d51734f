"""`rotate-keys`: re-encrypt every stored credential with the newest key, so older keys can be
retired; `--new-key` first makes a new key the newest in the key file."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from messaging_whatsapp.cli.support import JsonOption, print_json, run_engine, stderr, stdout
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.crypto import new_key, read_key_file, write_key_file
from messaging_whatsapp.crypto.stored import LEGACY, ColumnRotation, rotate_all, survey
from messaging_whatsapp.errors import InvalidInput


async def _rotate(context: EngineContext, *, add_key: bool, dry_run: bool, batch_size: int) -> dict[str, Any]:
    cipher = context.cipher
    added = None
    if add_key:
        if cipher.source is None:
            raise InvalidInput(
                "the keys come from WHATSAPP_ENCRYPTION_KEY: put a new key first in it (older ones after, "
                "comma-separated), restart the engine's processes, and run rotate-keys without --new-key"
            )
        key = new_key()
        write_key_file(cipher.source, [key, *read_key_file(cipher.source)])
        added = cipher.source
    before = await survey(context.engine)
    total = before.total

    def progress(rotation: ColumnRotation) -> None:
        # Only long runs say how far they are (the summary says the rest).
        if total > batch_size:
            stderr.print(f"{rotation.label}: {rotation.values} checked, {rotation.rotated} re-encrypted")

    columns: list[ColumnRotation] = []
    if not dry_run:
        columns = await rotate_all(context.engine, cipher, batch_size=batch_size, progress=progress)
    after = await survey(context.engine) if not dry_run else before
    by_key = after.by_key()
    return {
        "newest_key": cipher.newest_key_id,
        "keys": cipher.key_ids,
        "key_source": str(cipher.source) if cipher.source is not None else "WHATSAPP_ENCRYPTION_KEY",
        "new_key": added is not None,
        "dry_run": dry_run,
        "columns": [asdict(column) for column in columns],
        "values_by_key": by_key,
        # Keys (or LEGACY: values without a key id) that stored values still need.
        "old_keys_in_use": sorted(kid for kid in by_key if kid != cipher.newest_key_id),
    }


def rotate_keys(
    add_key: Annotated[
        bool,
        typer.Option("--new-key", help="First generate a key and make it the newest in the key file."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing: count the stored values under each key.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows re-encrypted per transaction.")
    ] = 500,
    as_json: JsonOption = False,
) -> None:
    """Re-encrypt every stored credential (numbers' credentials, tenants' suppression keys) with the
    newest key; safe to run again. Older keys stay for decryption until you remove them."""
    if add_key and dry_run:
        raise typer.BadParameter("--new-key changes the key file: it cannot go with --dry-run")

    async def work(context: EngineContext) -> dict[str, Any]:
        return await _rotate(context, add_key=add_key, dry_run=dry_run, batch_size=batch_size)

    summary = run_engine(work)
    if as_json:
        print_json(summary)
        return
    if summary["new_key"]:
        stdout.print(f"new key {summary['newest_key']} is the newest in {summary['key_source']}")
    for column in summary["columns"]:
        stdout.print(
            f"{column['label']}: {column['rotated']} re-encrypted, {column['already_current']} already "
            f"under {summary['newest_key']}"
            + (
                f", {column['changed_meanwhile']} changed meanwhile (run again)"
                if column["changed_meanwhile"]
                else ""
            )
        )
    for kid, labels in summary["values_by_key"].items():
        name = "values without a key id" if kid == LEGACY else f"key {kid}"
        stdout.print(f"{name}: " + ", ".join(f"{count} {label}" for label, count in labels.items()))
    old = [kid for kid in summary["keys"] if kid != summary["newest_key"]]
    if summary["old_keys_in_use"]:
        stdout.print(f"still needed: {', '.join(summary['old_keys_in_use'])}")
    elif old:
        stdout.print(
            f"nothing needs {', '.join(old)} any more: you may remove it from {summary['key_source']}"
        )
