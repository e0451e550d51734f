"""Primary keys: valid UUIDv7, unique, and in creation order within a process."""

from __future__ import annotations

import uuid

from messaging_whatsapp.db import new_id


def test_ids_are_uuid7_unique_and_in_creation_order() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for value in ids[::5_000]:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, value)
