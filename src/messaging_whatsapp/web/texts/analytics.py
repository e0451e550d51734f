"""Portuguese (Brazil) for the analytics pages."""

PORTUGUESE: dict[str, str] = {}
