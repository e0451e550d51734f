"""Portuguese (Brazil) for the alerts pages."""

PORTUGUESE: dict[str, str] = {}
