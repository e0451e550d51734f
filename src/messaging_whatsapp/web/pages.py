"""The inbox pages and the fragments the live client fetches by id when an event names them.

Events carry ids only; on one the browser asks for the server-rendered piece (a list item, a
message, the lead panel) and puts it in place, so what it shows is always what the server says.
A page without a session goes to /login; a fragment without one is a 401, and a conversation the
caller may not see (another tenant's, or not an agent's) is a 404 in both.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import NotFound
from messaging_whatsapp.followups import service as followups_service
from messaging_whatsapp.inbox.models import Conversation
from messaging_whatsapp.inbox.service import waiting_for_person
from messaging_whatsapp.inbox.visibility import Viewer, check_conversation
from messaging_whatsapp.providers.capabilities import has_service_window, takes_templates
from messaging_whatsapp.sending import scheduled as scheduled_messages
from messaging_whatsapp.sending.models import ScheduledStatus
from messaging_whatsapp.sending.rules import SERVICE_WINDOW
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import InboxReader
from messaging_whatsapp.tenancy.models import UserRole
from messaging_whatsapp.tenancy.users import get_user
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.alert_banner import load_banner, sees_alerts
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.queries import Filters
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.session import HOME_PATH, LOGIN_PATH, page_principal

router = APIRouter(include_in_schema=False)
LIST_PAGE = 30

# Strings the browser's script shows (the page hands them over in its language).
SCRIPT_TEXTS = (
    "Live",
    "Offline: reconnecting...",
    "{name} is typing...",
    "Could not send.",
    "Something went wrong. Try again.",
    "Today",
    # The follow-up dialog and "send later" (static/followups.js)
    "Give a date and time in the future.",
    "Write the message first.",
    "Scheduled for {when}.",
)


def _filters(
    tab: str | None = None, status: str | None = None, instance_id: str | None = None, q: str | None = None
) -> Filters:
    return Filters.read(tab, status, instance_id, q)


ListFilters = Annotated[Filters, Depends(_filters)]


async def _texts(request: Request, session: AsyncSession, principal: Principal) -> Texts:
    return Texts(choose_language(request), await queries.tenant_timezone(session, principal.tenant_id))


@router.get("/")
async def home(request: Request, context: Context) -> Response:
    """The inbox for a logged-in user, the login page for anyone else."""
    principal = await page_principal(request, context)
    return RedirectResponse(HOME_PATH if principal else LOGIN_PATH, status_code=303)


@router.get(HOME_PATH)
async def inbox(request: Request, context: Context, session: DbSession, filters: ListFilters) -> Response:
    """The three-column inbox, no conversation open."""
    return await _inbox(request, context, session, filters, None)


@router.get(HOME_PATH + "/{conversation_id}")
async def inbox_conversation(
    conversation_id: str, request: Request, context: Context, session: DbSession, filters: ListFilters
) -> Response:
    """The inbox with one conversation open (a link to it survives a reload)."""
    return await _inbox(request, context, session, filters, conversation_id)


async def _inbox(
    request: Request, context: Context, session: AsyncSession, filters: Filters, conversation_id: str | None
) -> Response:
    principal = await page_principal(request, context)
    if principal is None or principal.user_id is None:
        return RedirectResponse(LOGIN_PATH, status_code=303)
    t = await _texts(request, session, principal)
    viewer = Viewer.of(principal)
    # Read before the data: events after it are replayed on connect, so none falls in between.
    last_event_id = await context.realtime.latest(principal.tenant_id)
    opened: dict[str, Any] = {}
    if conversation_id is not None:
        try:
            opened = await _chat_values(session, principal, viewer, conversation_id, t)
        except NotFound:
            return page(request, "not_found.html", t, status_code=404)
    rows, next_cursor = await queries.conversation_rows(session, principal, filters, None, LIST_PAGE)
    me = await get_user(session, principal.tenant_id, principal.user_id)
    scripts = {text: t(text) for text in SCRIPT_TEXTS}
    values = {
        "me": me,
        "banner": await load_banner(session, principal.tenant_id) if sees_alerts(me.role) else None,
        "me_id": principal.user_id,
        "filters": filters,
        "rows": rows,
        "next_cursor": next_cursor,
        "instances": await queries.instances(session, principal.tenant_id),
        "last_event_id": last_event_id,
        "script_texts": scripts,
        "conversation_id": conversation_id,
        **opened,
    }
    return page(request, "inbox.html", t, **values)


@router.get(HOME_PATH + "/fragments/conversations")
async def conversation_page(
    request: Request,
    session: DbSession,
    principal: InboxReader,
    filters: ListFilters,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """A page of the conversation list (the first, or the one after `cursor`: endless scroll)."""
    t = await _texts(request, session, principal)
    rows, next_cursor = await queries.conversation_rows(session, principal, filters, cursor, LIST_PAGE)
    return page(
        request,
        "conversation_page.html",
        t,
        rows=rows,
        next_cursor=next_cursor,
        filters=filters,
        first=cursor is None,
        me_id=principal.user_id,
    )


@router.get(HOME_PATH + "/fragments/conversation/{conversation_id}")
async def conversation_fragment(
    conversation_id: str, request: Request, session: DbSession, principal: InboxReader, filters: ListFilters
) -> Response:
    """One list item, as it is now; 204 when it no longer matches the list's filters."""
    t = await _texts(request, session, principal)
    row = await queries.conversation_row(session, principal, conversation_id)
    if not queries.matches(row, filters, principal.user_id):
        return Response(status_code=204)
    return page(request, "conversation_item.html", t, row=row, filters=filters, me_id=principal.user_id)


@router.get(HOME_PATH + "/fragments/chat/{conversation_id}")
async def chat_fragment(
    conversation_id: str, request: Request, session: DbSession, principal: InboxReader
) -> Response:
    """The chat column of one conversation: its header, messages and composer."""
    t = await _texts(request, session, principal)
    values = await _chat_values(session, principal, Viewer.of(principal), conversation_id, t)
    return page(request, "chat.html", t, **values)


@router.get(HOME_PATH + "/fragments/messages/{conversation_id}")
async def older_messages(
    conversation_id: str,
    request: Request,
    session: DbSession,
    principal: InboxReader,
    cursor: Annotated[str, Query(max_length=500)],
) -> Response:
    """The messages before the cursor (scrolling back in a chat), with the button to older ones."""
    t = await _texts(request, session, principal)
    chat = await queries.chat(session, principal, conversation_id, cursor)
    return page(request, "messages.html", t, chat=chat, contact=chat.contact, me_id=principal.user_id)


@router.get(HOME_PATH + "/fragments/message/{message_id}")
async def message_fragment(
    message_id: str, request: Request, session: DbSession, principal: InboxReader
) -> Response:
    """One message as it is now (a new one, or one whose status moved)."""
    t = await _texts(request, session, principal)
    entry = await queries.chat_message(session, principal, message_id)
    contact_name = await queries.contact_name(session, principal.tenant_id, entry.message.conversation_id)
    return page(request, "message.html", t, entry=entry, contact_name=contact_name, me_id=principal.user_id)


@router.get(HOME_PATH + "/fragments/ai-draft/{conversation_id}")
async def ai_draft_fragment(
    conversation_id: str, request: Request, session: DbSession, principal: InboxReader
) -> Response:
    """The assistant's suggestion above the composer, as it is now (empty when there is none)."""
    t = await _texts(request, session, principal)
    await check_conversation(session, principal.tenant_id, conversation_id, Viewer.of(principal))
    conversation = await session.get_one(Conversation, conversation_id)
    suggestion = await queries.suggestion(session, principal.tenant_id, conversation)
    return page(request, "ai_draft.html", t, suggestion=suggestion)


@router.get(HOME_PATH + "/fragments/lead/{conversation_id}")
async def lead_fragment(
    conversation_id: str, request: Request, session: DbSession, principal: InboxReader
) -> Response:
    """The lead panel of one conversation."""
    t = await _texts(request, session, principal)
    lead = await queries.lead(session, principal.tenant_id, Viewer.of(principal), conversation_id)
    follow_ups = await _follow_up_values(session, principal, lead)
    return page(request, "lead.html", t, **_lead_values(lead, principal), **follow_ups)


async def _follow_up_values(
    session: AsyncSession, principal: Principal, lead: queries.Lead
) -> dict[str, Any]:
    """The lead panel's follow-up (the open ticket's latest) and the conversation's scheduled
    messages (followups.html)."""
    ticket = queries.open_ticket(lead.tickets)
    viewer = Viewer.of(principal)
    follow_up = None
    if ticket is not None:
        found = await followups_service.list_follow_ups(session, principal.tenant_id, ticket.id, viewer)
        follow_up = found[0] if found else None
    scheduled, _ = await scheduled_messages.list_scheduled(
        session,
        principal.tenant_id,
        conversation_id=lead.conversation.id,
        contact_id=None,
        status=ScheduledStatus.SCHEDULED,
        cursor=None,
        limit=20,
        viewer=viewer,
    )
    return {"follow_up": follow_up, "scheduled": sorted(scheduled, key=lambda item: item.send_at)}


def _lead_values(lead: queries.Lead, principal: Principal) -> dict[str, Any]:
    return {
        "lead": lead,
        "ticket": queries.open_ticket(lead.tickets),
        "me_id": principal.user_id,
        "supervises": principal.role != UserRole.AGENT.value,
    }


async def _chat_values(
    session: AsyncSession, principal: Principal, viewer: Viewer, conversation_id: str, t: Texts
) -> dict[str, Any]:
    chat = await queries.chat(session, principal, conversation_id)
    lead = await queries.lead(session, principal.tenant_id, viewer, conversation_id)
    provider = chat.instance.provider
    last_inbound = chat.conversation.last_inbound_at
    window_open = not has_service_window(provider) or (
        last_inbound is not None and utcnow() - last_inbound <= SERVICE_WINDOW
    )
    return {
        "chat": chat,
        "contact": chat.contact,
        "window_open": window_open,
        "templates": await queries.templates(session, principal.tenant_id, chat.instance)
        if takes_templates(provider)
        else [],
        # The customer asked for a person and nobody answered yet: the header says so.
        "wants_person": bool(
            chat.conversation.open_ticket_id
            and await waiting_for_person(session, [chat.conversation.open_ticket_id])
        ),
        **_lead_values(lead, principal),
        **await _follow_up_values(session, principal, lead),
        "suggestion": await queries.suggestion(session, principal.tenant_id, chat.conversation),
        "timezone": t.zone.key,
    }
