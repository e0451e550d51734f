"""Portuguese (Brazil) for the automation pages."""

PORTUGUESE: dict[str, str] = {}
