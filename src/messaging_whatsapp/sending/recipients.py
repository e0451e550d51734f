"""Who a one-to-one message goes to: a phone, or a person known only by an identity a provider
gave us (Meta's business-scoped user id, a gateway's LID), and which numbers can reach them.

A contact with a phone is always sent to by phone, whatever `to` named them by. One known only by
an identity can be reached only through the providers that speak it (providers/base.py REACHES):
any other is refused before anything is queued, with 422 `recipient_unreachable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import insert_new_rows, one_of
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.inbox.models import Contact, contacts_table
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.base import REACHES, ProviderName
from messaging_whatsapp.providers.outbound import RecipientKind, identity_kind
from messaging_whatsapp.sending.rules import recipient_phone

_NAMES = {RecipientKind.BSUID: "business-scoped user id (BSUID)", RecipientKind.LID: "LID"}
_COLUMNS = {RecipientKind.BSUID: "bsuid", RecipientKind.LID: "lid"}


def recipient(raw: str, country: str) -> tuple[RecipientKind, str]:
    """What `to` names: (kind, value), the phone canonical (a national form read as a number of the
    tenant's `country`); InvalidInput when it is none of them."""
    kind = identity_kind(raw)
    if kind is not None:
        return kind, raw.strip()
    return RecipientKind.PHONE, recipient_phone(raw, country)


@dataclass(frozen=True, slots=True)
class KnownIdentity:
    """A contact found by an identity: its id, its phone if it has one, and its opt-out flag."""

    contact_id: str
    phone: str | None
    opted_out: bool


def checked_phone(key: str, identities: dict[str, KnownIdentity]) -> str | None:
    """The phone a recipient's opt-out is checked by: the key itself, or its identity's contact's."""
    if key.startswith("+"):
        return key
    known = identities.get(key)
    return known.phone if known is not None else None


async def identity_contacts(
    session: AsyncSession, tenant_id: str, wanted: set[tuple[RecipientKind, str]]
) -> dict[str, KnownIdentity]:
    """identity -> the tenant's contact known by it."""
    if not wanted:
        return {}
    conditions = [
        one_of(session, getattr(Contact, _COLUMNS[kind]), values)
        for kind in (RecipientKind.BSUID, RecipientKind.LID)
        if (values := [value for k, value in wanted if k is kind])
    ]
    rows = await session.execute(
        select(Contact.id, Contact.phone, Contact.bsuid, Contact.lid, Contact.opted_out).where(
            Contact.tenant_id == tenant_id, or_(*conditions)
        )
    )
    found: dict[str, KnownIdentity] = {}
    for row in rows:
        known = KnownIdentity(row.id, row.phone, row.opted_out)
        for value in (row.bsuid, row.lid):
            if value:
                found[value] = known
    return found


async def new_identity_contacts(
    session: AsyncSession, tenant_id: str, wanted: set[tuple[RecipientKind, str]], now: datetime
) -> dict[str, str]:
    """identity -> contact id of people written to by an identity for the first time."""
    ids: dict[str, str] = {}
    for kind in (RecipientKind.BSUID, RecipientKind.LID):
        column = _COLUMNS[kind]
        rows = [
            {"tenant_id": tenant_id, column: value, "created_at": now, "updated_at": now}
            for value in sorted(value for k, value in wanted if k is kind)
        ]
        created = await insert_new_rows(session, contacts_table, ("tenant_id", column), rows)
        ids.update({value: contact_id for (_, value), contact_id in created.items()})
    return ids


def reaching(
    instances: list[WhatsAppInstance], kind: RecipientKind, instance_id: str | None
) -> list[WhatsAppInstance]:
    """The instances that can send to a recipient addressed this way; a named one that cannot, or
    none at all, is refused (422 `recipient_unreachable`), naming the providers that could."""
    if kind is RecipientKind.PHONE:
        return instances
    providers = REACHES[kind]
    able = sorted(provider.value for provider in providers)
    if instance_id is not None:
        named = next((i for i in instances if i.id == instance_id), None)
        if named is not None and ProviderName(named.provider) not in providers:
            raise InvalidInput(
                f"instance {named.name} ({named.provider}) cannot send to a person known only by their "
                f"{_NAMES[kind]}; use a {' or '.join(able)} number",
                code="recipient_unreachable",
            )
        return instances
    usable = [i for i in instances if ProviderName(i.provider) in providers]
    if not usable:
        raise InvalidInput(
            f"this person is known only by their {_NAMES[kind]}, which only {' or '.join(able)} numbers "
            "can send to, and this tenant has none",
            code="recipient_unreachable",
        )
    return usable
