"""The hub the settings call for."""

from __future__ import annotations

from messaging_whatsapp.config import Settings
from messaging_whatsapp.realtime.hub import Hub, LocalHub
from messaging_whatsapp.realtime.redis_hub import RedisHub


def open_realtime(settings: Settings) -> Hub:
    """Redis Streams when REDIS_URL is set (API and worker may be apart), else in process."""
    if settings.redis_url:
        return RedisHub(settings.redis_url, settings.stream_prefix, settings.realtime_buffer_events)
    return LocalHub(settings.realtime_buffer_events)
