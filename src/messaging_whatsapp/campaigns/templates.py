"""What a campaign may send through each of its numbers: templates and WhatsApp's 24-hour window.

The official APIs (Meta, Twilio) deliver free-form text only to a person who wrote to that
business number in the last 24 hours (Meta counts the window per business phone number, and so
do we: the person's last message to the number that sends, not to the tenant); anyone else needs
an approved template. The gateways (Evolution, WuzAPI) have no templates and no window; the
simulator takes both and has no window.

Checked three times:
- when a campaign's numbers or variations are saved: a gateway number needs a free-form
  variation (422 `template_unsupported`), and a free-form text must fit each number's text limit
  (422 `text_too_long`; campaign texts are not split, so a contact's message stays one message);
- when it starts: an official number with pending contacts outside their window needs a template
  variation (422 `template_required`, naming the numbers), and each template variation must be
  stored, approved and given its parameters for every Meta and simulator number of the campaign
  (the 422s of templates/check.py; a draft may be saved while Meta still reviews its template);
- as each contact is handed out (`fit_to_window`, the dispatcher's one call): a contact outside
  the window of its official number gets a template variation; with none (or a text grown past
  the limit by its variables) it is skipped with the reason and a `message_failed` log, unsent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns import logs
from messaging_whatsapp.campaigns.handout import Handout, render
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignContactStatus,
    CampaignInstance,
    CampaignLog,
    CampaignMessage,
    LogType,
    Severity,
    campaign_contacts_table,
    campaigns_table,
)
from messaging_whatsapp.campaigns.variations import render_template
from messaging_whatsapp.db import one_of
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.inbox.models import Conversation
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.providers.capabilities import has_service_window, takes_templates, text_limit
from messaging_whatsapp.providers.outbound import OutboundMediaType
from messaging_whatsapp.sending.rules import SERVICE_WINDOW
from messaging_whatsapp.templates.check import TemplateBook


@dataclass(frozen=True, slots=True)
class _Skip:
    handout: Handout
    code: str
    title: str


async def check_variations(session: AsyncSession, campaign: Campaign) -> None:
    """Every number of the campaign has a variation it can send (422 `template_unsupported`),
    and every free-form text fits each number's text limit (422 `text_too_long`)."""
    variations = await _variations(session, campaign)
    instances = await _instances(session, campaign)
    if not variations:
        return
    texts = [v for v in variations if v.template is None]
    if any((v.media or {}).get("type") == OutboundMediaType.AUDIO.value for v in texts):
        # The variation's text would be the audio's caption, which WhatsApp does not show.
        raise InvalidInput(
            "an audio variation's text would be lost (WhatsApp audio messages take no caption): "
            "use an image, video or document, or a text variation",
            code="caption_unsupported",
        )
    templateless = [i for i in instances if not takes_templates(i.provider)]
    if templateless and not texts:
        raise InvalidInput(
            f"{_names(templateless)} cannot send templates (the gateways send as WhatsApp Web, "
            "which has none): add a text variation or take these numbers out",
            code="template_unsupported",
            details={"instances": [i.id for i in templateless]},
        )
    for instance in instances:
        limit = text_limit(instance.provider)
        longest = max((len(v.content) for v in texts), default=0)
        if longest > limit:
            raise InvalidInput(
                f"a variation has {longest} characters; {instance.name} ({instance.provider}) "
                f"sends at most {limit} in one message: shorten it",
                code="text_too_long",
                details={"instances": [instance.id], "limit": limit},
            )


async def check_templates_at_start(session: AsyncSession, campaign: Campaign) -> None:
    """Every template variation can be sent by every Meta and simulator number of the campaign:
    stored for its scope, approved, given exactly its parameters (422 as a one-to-one send)."""
    templates = [v.template for v in await _variations(session, campaign) if v.template is not None]
    if not templates:
        return
    book = await TemplateBook.load(session, campaign.tenant_id)
    for instance in await _instances(session, campaign):
        for template in templates:
            name, language = str(template.get("name", "")), str(template.get("language") or "pt_BR")
            book.check(instance, name, language, len(template.get("parameters") or []))


async def check_window_at_start(session: AsyncSession, campaign: Campaign, now: datetime) -> None:
    """422 `template_required` when an official number of a campaign without a template variation
    would send free-form text to pending contacts outside their 24-hour window, naming the numbers."""
    variations = await _variations(session, campaign)
    if any(v.template is not None for v in variations):
        return
    windowed = [i for i in await _instances(session, campaign) if has_service_window(i.provider)]
    outside: dict[str, int] = {}
    for instance in windowed:
        count = await _pending_outside_window(session, campaign, instance, now)
        if count:
            outside[instance.id] = count
    if not outside:
        return
    refused = [i for i in windowed if i.id in outside]
    raise InvalidInput(
        f"{_names(refused)} would send free-form text to {max(outside.values())} contact(s) who have "
        "not written to them in the last 24 hours, which WhatsApp refuses (131047 / 63016): add a "
        'template variation, {"template": {"name", "language", "parameters"}}',
        code="template_required",
        details={"instances": [{"id": i.id, "name": i.name, "contacts": outside[i.id]} for i in refused]},
    )


async def fit_to_window(
    session: AsyncSession,
    campaign: Campaign,
    planned: list[Handout],
    variations: list[CampaignMessage],
    instances: list[WhatsAppInstance],
    now: datetime,
) -> list[Handout]:
    """The handouts each number can send: a template variation (parameters filled) for a contact
    outside its official number's window, a text one on a gateway; contacts no variation fits are
    skipped with the reason and a log. Returns the handouts to store."""
    if not planned:
        return planned
    by_id = {instance.id: instance for instance in instances}
    in_window = await _in_window(session, campaign, planned, by_id, now)
    templates = sorted((v for v in variations if v.template is not None), key=_least_used)
    texts = sorted((v for v in variations if v.template is None), key=_least_used)
    kept: list[Handout] = []
    skipped: list[_Skip] = []
    for handout in planned:
        fitted = _fit(handout, by_id[handout.instance_id], in_window, templates, texts)
        if isinstance(fitted, _Skip):
            skipped.append(fitted)
        else:
            kept.append(fitted)
    await _skip(session, campaign, skipped, now)
    return kept


def _fit(
    handout: Handout,
    instance: WhatsAppInstance,
    in_window: set[tuple[str, str]],
    templates: list[CampaignMessage],
    texts: list[CampaignMessage],
) -> Handout | _Skip:
    variation = handout.variation
    if variation.template is not None and not takes_templates(instance.provider):
        if not texts:
            return _Skip(handout, "template_unsupported", f"{instance.provider} cannot send templates")
        variation = texts[0]
    elif (
        variation.template is None
        and has_service_window(instance.provider)
        and (handout.contact.contact_id, instance.id) not in in_window
    ):
        if not templates:
            return _Skip(
                handout,
                "outside_service_window",
                "the person has not written to this number in 24 hours and the campaign has no "
                "template variation; WhatsApp refuses free-form text then",
            )
        variation = templates[0]
    variables = handout.contact.variables
    if variation.template is not None:
        template = render_template(variation.template, variables)
        return replace(handout, variation=variation, text=variation.content, template=template)
    text = handout.text if variation is handout.variation else render(variation.content, variables)
    limit = text_limit(instance.provider)
    if len(text) > limit:
        return _Skip(handout, "text_too_long", f"the text is {len(text)} characters; {limit} at most")
    return replace(handout, variation=variation, text=text, template=None)


async def _skip(session: AsyncSession, campaign: Campaign, skipped: list[_Skip], now: datetime) -> None:
    """The contacts end `skipped` with the reason, unsent, each with a `message_failed` log."""
    if not skipped:
        return
    c = campaign_contacts_table.c
    for skip in skipped:
        await session.execute(
            update(campaign_contacts_table)
            .where(c.id == skip.handout.contact.id)
            .values(
                status=CampaignContactStatus.SKIPPED.value,
                instance_id=skip.handout.instance_id,
                error_code=skip.code,
                error_title=skip.title,
                updated_at=now,
            )
        )
    k = campaigns_table.c
    await session.execute(
        update(campaigns_table)
        .where(k.id == campaign.id)
        .values(pending_count=k.pending_count - len(skipped), skipped_count=k.skipped_count + len(skipped))
    )
    await logs.add_logs(session, [_skip_log(campaign, skip, now) for skip in skipped])


def _skip_log(campaign: Campaign, skip: _Skip, now: datetime) -> CampaignLog:
    contact: CampaignContact = skip.handout.contact
    return logs.new_log(
        campaign,
        LogType.MESSAGE_FAILED,
        Severity.WARNING,
        f"Not sent: {skip.title}",
        details={"skipped": True, "error": {"code": skip.code, "title": skip.title}},
        instance_id=skip.handout.instance_id,
        contact_id=contact.contact_id,
        campaign_contact_id=contact.id,
        at=now,
    )


async def _in_window(
    session: AsyncSession,
    campaign: Campaign,
    planned: list[Handout],
    by_id: dict[str, WhatsAppInstance],
    now: datetime,
) -> set[tuple[str, str]]:
    """(contact, instance) pairs of the windowed numbers whose person wrote there in 24 hours."""
    windowed = {h.contact.contact_id for h in planned if has_service_window(by_id[h.instance_id].provider)}
    if not windowed:
        return set()
    rows = await session.execute(
        select(Conversation.contact_id, Conversation.instance_id).where(
            Conversation.tenant_id == campaign.tenant_id,
            one_of(session, Conversation.contact_id, windowed),
            Conversation.last_inbound_at >= now - SERVICE_WINDOW,
        )
    )
    return {(row.contact_id, row.instance_id) for row in rows}


async def _pending_outside_window(
    session: AsyncSession, campaign: Campaign, instance: WhatsAppInstance, now: datetime
) -> int:
    cc = campaign_contacts_table.c
    recent = exists().where(
        and_(
            Conversation.contact_id == cc.contact_id,
            Conversation.instance_id == instance.id,
            Conversation.last_inbound_at >= now - SERVICE_WINDOW,
        )
    )
    count = await session.scalar(
        select(func.count()).where(
            cc.campaign_id == campaign.id, cc.status == CampaignContactStatus.PENDING.value, ~recent
        )
    )
    return int(count or 0)


async def _variations(session: AsyncSession, campaign: Campaign) -> list[CampaignMessage]:
    await session.flush()
    query = select(CampaignMessage).where(CampaignMessage.campaign_id == campaign.id)
    return list(await session.scalars(query))


async def _instances(session: AsyncSession, campaign: Campaign) -> list[WhatsAppInstance]:
    query = (
        select(WhatsAppInstance)
        .join(CampaignInstance, CampaignInstance.instance_id == WhatsAppInstance.id)
        .where(CampaignInstance.campaign_id == campaign.id, WhatsAppInstance.tenant_id == campaign.tenant_id)
        .order_by(WhatsAppInstance.name)
    )
    return list(await session.scalars(query))


def _least_used(variation: CampaignMessage) -> tuple[int, int]:
    return (variation.usage_count, variation.order)


def _names(instances: list[WhatsAppInstance]) -> str:
    return ", ".join(f"{i.name} ({i.display_number}, {i.provider})" for i in instances)
