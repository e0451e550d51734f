"""The hub the settings call for."""

from __future__ import annotations

from messaging_whatsapp.config import Settings
from messaging_whatsapp.realtime.centrifugo import CentrifugoMirror
from messaging_whatsapp.realtime.hub import Hub, LocalHub, Mirror, Retention
from messaging_whatsapp.realtime.redis_hub import RedisHub


def open_realtime(settings: Settings) -> Hub:
    """Redis Streams when REDIS_URL is set (API and worker may be apart), else in process; with
    Centrifugo configured, what this process publishes goes there too."""
    retention = Retention(
        keep_events=settings.realtime_buffer_events,
        keep_seconds=settings.realtime_buffer_seconds,
        # The cap never undercuts the count floor.
        max_events=max(settings.realtime_buffer_max_events, settings.realtime_buffer_events),
    )
    mirror = open_mirror(settings)
    if settings.redis_url:
        return RedisHub(settings.redis_url, settings.stream_prefix, retention, mirror)
    return LocalHub(retention, mirror)


def open_mirror(settings: Settings) -> Mirror | None:
    """Centrifugo's publisher, when both its URL and its API key are set."""
    if not (settings.centrifugo_url and settings.centrifugo_api_key):
        return None
    return CentrifugoMirror(settings.centrifugo_url, settings.centrifugo_api_key.get_secret_value())
