"""Portuguese (Brazil) for the notifications pages."""

PORTUGUESE: dict[str, str] = {}
