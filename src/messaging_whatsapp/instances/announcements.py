"""A number's events for other systems and live screens: its connection, its status as an
operator sets it, its health status (ids and states; never credentials)."""

from __future__ import annotations

from messaging_whatsapp.batch import ConnectionChange
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.outbox.service import PublishedEvent


def connection_event(tenant_id: str, change: ConnectionChange) -> PublishedEvent:
    """`whatsapp_instance_connection_changed`: connected, connecting (a QR code to scan) or closed."""
    payload = {
        "instance_id": change.instance_id,
        "connection_state": change.state.value,
        "reason": change.reason,
        "changed_at": change.at.isoformat(),
    }
    return PublishedEvent("whatsapp_instance_connection_changed", tenant_id, payload)


def status_event(instance: WhatsAppInstance) -> PublishedEvent:
    """`whatsapp_instance_paused` or `whatsapp_instance_resumed` by an operator."""
    paused = instance.status == InstanceStatus.PAUSED.value
    payload = {"instance_id": instance.id, "display_number": instance.display_number, "reason": "operator"}
    kind = "whatsapp_instance_paused" if paused else "whatsapp_instance_resumed"
    return PublishedEvent(kind, instance.tenant_id, payload)


def health_event(tenant_id: str, instance_id: str, status: str, score: float) -> PublishedEvent:
    """`whatsapp_instance_health_changed`: the number's health status moved (healthy, warning...)."""
    payload = {"instance_id": instance_id, "health_status": status, "health_score": round(score, 1)}
    return PublishedEvent("whatsapp_instance_health_changed", tenant_id, payload)
