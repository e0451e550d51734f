"""Portuguese (Brazil) for the campaigns pages."""

PORTUGUESE: dict[str, str] = {}
