"""Portuguese (Brazil) for the templates pages."""

PORTUGUESE: dict[str, str] = {}
