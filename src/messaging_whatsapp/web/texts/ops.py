"""Portuguese (Brazil) for the ops pages."""

PORTUGUESE: dict[str, str] = {}
