"""The inbox's events for other systems and live screens, beyond a message's own (inbox/inbound.py,
inbox/receipts.py) and a ticket's close (inbox/tickets.py): ids and states, never content."""

from __future__ import annotations

from messaging_whatsapp.inbox.models import Ticket, TicketStatus
from messaging_whatsapp.outbox.service import PublishedEvent


def read_event(tenant_id: str, conversation_id: str, read_by: str | None) -> PublishedEvent:
    """`whatsapp_conversation_read`: the team read the conversation (its unread count is 0)."""
    payload = {"conversation_id": conversation_id, "unread_count": 0, "read_by": read_by}
    return PublishedEvent("whatsapp_conversation_read", tenant_id, payload)


def assigned_event(ticket: Ticket) -> PublishedEvent:
    """`whatsapp_ticket_assigned`: the ticket's assignee now (None: back in the queue)."""
    payload = {
        "ticket_id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "status": ticket.status,
        "assignee_id": ticket.assignee_id,
    }
    return PublishedEvent("whatsapp_ticket_assigned", ticket.tenant_id, payload)


def opened_event(tenant_id: str, conversation_id: str, ticket_id: str) -> PublishedEvent:
    """`whatsapp_ticket_opened`: a new session, unassigned (in the team's queue)."""
    payload = {"ticket_id": ticket_id, "conversation_id": conversation_id, "status": TicketStatus.OPEN.value}
    return PublishedEvent("whatsapp_ticket_opened", tenant_id, payload)
