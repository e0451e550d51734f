"""Every table, imported in one place so metadata (and Alembic) sees them all."""

from messaging_whatsapp.alerts.models import Alert, AlertRule, SendMinute, WebhookMark
from messaging_whatsapp.analytics.models import AnalyticsCursor
from messaging_whatsapp.assistant.models import AiReply, AssistantSettings
from messaging_whatsapp.automation.models import AutoReplyRule, IntentList, RuleFiring
from messaging_whatsapp.campaigns.models import (
    Campaign,
    CampaignContact,
    CampaignInstance,
    CampaignLog,
    CampaignMessage,
)
from messaging_whatsapp.consent.models import Consent, OptOut, Suppression
from messaging_whatsapp.db import Base
from messaging_whatsapp.followups.models import FollowUp, FollowUpStepLog
from messaging_whatsapp.inbox.models import Contact, Conversation, Message, Ticket
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from messaging_whatsapp.knowledge.models import KnowledgeChunk, KnowledgeDocument, KnowledgeRevision
from messaging_whatsapp.notifications.models import EventMapping, InboundEvent
from messaging_whatsapp.ops.models import WorkerHeartbeat
from messaging_whatsapp.outbox.models import OutboxEvent
from messaging_whatsapp.sending.models import ScheduledMessage
from messaging_whatsapp.streams.models import StreamEntryRow, StreamGroupRow, StreamPendingRow
from messaging_whatsapp.templates.models import MessageTemplateRow
from messaging_whatsapp.tenancy.models import ApiKey, Tenant, User
from messaging_whatsapp.worker.models import ProcessedEvent

__all__ = [
    "AiReply",
    "Alert",
    "AlertRule",
    "AnalyticsCursor",
    "ApiKey",
    "AssistantSettings",
    "AutoReplyRule",
    "Base",
    "Campaign",
    "CampaignContact",
    "CampaignInstance",
    "CampaignLog",
    "CampaignMessage",
    "Consent",
    "Contact",
    "Conversation",
    "EventMapping",
    "FollowUp",
    "FollowUpStepLog",
    "InboundEvent",
    "IntentList",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "KnowledgeRevision",
    "Message",
    "MessageTemplateRow",
    "OptOut",
    "OutboxEvent",
    "ProcessedEvent",
    "RuleFiring",
    "ScheduledMessage",
    "SendMinute",
    "StreamEntryRow",
    "StreamGroupRow",
    "StreamPendingRow",
    "Suppression",
    "Tenant",
    "Ticket",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookMark",
    "WebhookSubscription",
    "WhatsAppInstance",
    "WorkerHeartbeat",
]
