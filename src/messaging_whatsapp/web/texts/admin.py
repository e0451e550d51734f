"""Portuguese (Brazil) for the admin pages."""

PORTUGUESE: dict[str, str] = {}
