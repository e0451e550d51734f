"""Portuguese (Brazil) for the numbers pages."""

PORTUGUESE: dict[str, str] = {}
