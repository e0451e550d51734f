"""Telling the customer their messages were read, as an agent opens the conversation.

The inbox only announces that a conversation was read; the sending side (sending/readmarks.py)
reaches the provider off the request path, so a slow or failing provider never delays or fails
the agent's call. Processes without it (the CLI, tests of the inbox alone) announce to nobody.
"""

from __future__ import annotations

from typing import Protocol


class ReadMarks(Protocol):
    """Where the inbox announces a conversation read by the team."""

    def conversation_read(self, tenant_id: str, conversation_id: str) -> None:
        """The team read the conversation: tell the customer, when their provider can (never raises)."""
        ...


class NoReadMarks:
    """Announces to nobody."""

    def conversation_read(self, tenant_id: str, conversation_id: str) -> None:
        """Nothing to tell."""
