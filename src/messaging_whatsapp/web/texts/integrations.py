"""Portuguese (Brazil) for the integrations pages."""

PORTUGUESE: dict[str, str] = {}
