"""The check every template send passes before it is queued: the template exists for the number's
scope, is approved, and gets exactly the parameters its body needs.

Loaded once per batch (``TemplateBook.load``: one query for the tenant's templates), then checked
in memory per message, so a batch of many sends costs one read. Meta and simulator numbers are
checked; Twilio's templates are Content SIDs in Twilio's Content API, not listed here, so they pass
unchecked (Twilio refuses an unknown SID at send time); the gateways cannot send templates at all
(refused earlier, sending/rules.py).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.templates.models import MessageTemplateRow, TemplateStatus
from messaging_whatsapp.templates.service import is_checked, scope_of

# How many near names a template_not_found error suggests.
CLOSE_MATCHES = 3


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    """What the check needs of a stored template."""

    name: str
    language: str
    status: str
    parameter_names: tuple[str, ...]


class TemplateBook:
    """A tenant's stored templates by scope, for checking many sends at once."""

    def __init__(self, templates: dict[str, dict[tuple[str, str], StoredTemplate]]) -> None:
        self._by_scope = templates

    @classmethod
    async def load(cls, session: AsyncSession, tenant_id: str) -> TemplateBook:
        """Every stored template of the tenant (one query)."""
        t = MessageTemplateRow
        rows = await session.execute(
            select(t.scope, t.name, t.language, t.status, t.parameter_names).where(t.tenant_id == tenant_id)
        )
        by_scope: dict[str, dict[tuple[str, str], StoredTemplate]] = {}
        for row in rows:
            stored = StoredTemplate(row.name, row.language, row.status, tuple(row.parameter_names or ()))
            by_scope.setdefault(row.scope, {})[(row.name, row.language)] = stored
        return cls(by_scope)

    def check(self, instance: WhatsAppInstance, name: str, language: str, parameters: int) -> None:
        """Refuse (422) a template this number cannot send: not found for its scope
        (``template_not_found``), not approved (``template_not_approved``), or given another
        number of parameters than its body has (``template_parameters``)."""
        if not is_checked(instance.provider):
            return
        number = f"{instance.name} ({instance.display_number})"
        details = {"template": name, "language": language, "instance_id": instance.id}
        scope = scope_of(instance)
        if scope is None:
            raise InvalidInput(
                f"template {name} ({language}) cannot be checked for {number}: the Meta number has no "
                f"WABA id; set it (PATCH /api/v1/instances/{instance.id} with waba_id) and sync its "
                "templates (POST /api/v1/templates/sync)",
                code="template_not_found",
                details=details,
            )
        known = self._by_scope.get(scope, {})
        found = known.get((name, language))
        if found is None or found.status == TemplateStatus.REMOVED.value:
            raise InvalidInput(
                _not_found(name, language, number, instance, known),
                code="template_not_found",
                details=details,
            )
        if found.status != TemplateStatus.APPROVED.value:
            raise InvalidInput(
                f"template {name} ({language}) of {number} is {found.status}, not APPROVED: only "
                "approved templates can be sent",
                code="template_not_approved",
                details={**details, "status": found.status},
            )
        needed = len(found.parameter_names)
        if parameters != needed:
            wanted = f" ({', '.join(found.parameter_names)})" if needed else ""
            raise InvalidInput(
                f"template {name} ({language}) needs {needed} parameter{'s' if needed != 1 else ''}"
                f"{wanted}, got {parameters}",
                code="template_parameters",
                details={**details, "needed": needed, "given": parameters},
            )


def _not_found(
    name: str,
    language: str,
    number: str,
    instance: WhatsAppInstance,
    known: dict[tuple[str, str], StoredTemplate],
) -> str:
    """The template_not_found message: what was asked, near matches, and how to get it."""
    usable = {key: t for key, t in known.items() if t.status != TemplateStatus.REMOVED.value}
    labels = {f"{n} ({lang})": (n, lang) for n, lang in usable}
    other_languages = [f"{n} ({lang})" for n, lang in usable if n == name]
    close = other_languages or difflib.get_close_matches(
        f"{name} ({language})", list(labels), n=CLOSE_MATCHES, cutoff=0.6
    )
    hint = f"; close matches: {', '.join(sorted(close)[:CLOSE_MATCHES])}" if close else ""
    if instance.provider == ProviderName.META.value:
        how = (
            "templates come from Meta: sync them "
            "(POST /api/v1/templates/sync or `messaging-whatsapp sync-templates`)"
        )
    else:
        how = "create it for the simulator number (POST /api/v1/templates)"
    return f"template {name} ({language}) not found for {number}{hint}; {how}"
