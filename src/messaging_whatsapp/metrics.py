"""Prometheus metrics of the engine (served at GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

WEBHOOK_REQUESTS = Counter(
    "whatsapp_webhook_requests_total", "Webhook requests by provider and outcome", ["provider", "outcome"]
)
WEBHOOK_LATENCY = Histogram(
    "whatsapp_webhook_seconds",
    "Time to accept a webhook request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
WORKER_ENTRIES = Counter("whatsapp_worker_entries_total", "Inbound stream entries by outcome", ["outcome"])
WORKER_CHANGES = Counter("whatsapp_worker_changes_total", "Domain changes applied by the worker", ["kind"])
IGNORED_EVENTS = Counter(
    "whatsapp_ignored_events_total", "Provider events recognised and ignored", ["reason"]
)
EVENTS_PUBLISHED = Counter("whatsapp_events_published_total", "Events relayed to the events stream")
SENDER_MESSAGES = Counter(
    "whatsapp_sender_messages_total", "Outbound messages handled by the sender, by outcome", ["outcome"]
)
SIMULATOR_ACCEPTED = Counter("whatsapp_simulator_accepted_total", "Messages the built-in simulator took")
HTTP_CONNECTIONS_CUT = Counter(
    "whatsapp_http_connections_cut_total",
    "Connections the HTTP server closed on a slow or greedy client, by reason",
    ["reason"],
)
PROVIDER_CALL_SECONDS = Histogram(
    "whatsapp_provider_call_seconds",
    "Time a provider took to answer one send, by provider",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WEBHOOK_DELIVERY_ATTEMPTS = Counter(
    "whatsapp_webhook_delivery_attempts_total",
    "Attempts at delivering events out over HTTP, by what the delivery became "
    "(delivered, retrying, failed, superseded, deleted)",
    ["outcome"],
)
ALERTS_OPEN = Gauge(
    "whatsapp_alerts_open", "Open alerts of every tenant by rule, as the scheduler last evaluated", ["kind"]
)
EVENTS_IN = Counter(
    "whatsapp_events_in_total",
    "Events consumed from events:materials, by outcome (notified, skipped, ignored, unusable, failed, "
    "duplicate, retried, dead_lettered)",
    ["outcome"],
)
