"""Who may do what: roles in rank, and the scopes an API key can be limited to.

Every route names the least role it needs and the scope it belongs to (tenancy/deps.py); a
user's role must reach it, and an API key's too, within the scopes the key was given, if any.
README.md ("Roles") lists every route with the roles that may call it; a test walks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging_whatsapp.errors import Forbidden, InvalidInput
from messaging_whatsapp.tenancy.models import ROLE_RANK, UserRole


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant every query is scoped to, and the role."""

    tenant_id: str
    role: str
    user_id: str | None = None
    api_key_id: str | None = None
    # A user's token carries their token_version; a different one in the database ended it.
    token_version: int | None = None
    # An API key limited to these scopes; None: everything its role allows.
    scopes: frozenset[str] | None = None


SCOPES = {
    "messages:send": "send one-to-one messages",
    "conversations:read": "read contacts, conversations, messages and tickets",
    "conversations:write": "mark read, close and assign tickets",
    "campaigns:read": "read campaigns, their contacts, logs and statistics",
    "campaigns:write": "create, change, start, pause, resume, cancel and delete campaigns",
    "instances:read": "read the numbers and their health",
    "analytics:read": "read the delivery and volume figures (analytics)",
    "instances:write": "pause and resume numbers",
    "templates:read": "read the message templates",
    "templates:write": "create message templates and sync them from Meta",
    "automation:read": "read intents, auto-reply rules and business hours",
    "automation:write": "change intents, auto-reply rules and business hours",
    "events:write": "publish events from other systems (quote_created, order_status_changed...)",
    "integrations:read": "read event mappings, webhook subscriptions and their deliveries",
    "integrations:write": "change event mappings and webhook subscriptions",
    "knowledge:read": "search the knowledge base and read its documents",
    "knowledge:write": "add, change and delete the knowledge base's documents",
    "admin": "manage users, API keys and the tenant's settings",
}


def check_access(principal: Principal, role: UserRole, scope: str) -> None:
    """Forbidden unless the caller's role reaches `role` and, for a limited API key, `scope` is its."""
    if ROLE_RANK[UserRole(principal.role)] < ROLE_RANK[role]:
        raise Forbidden(f"this needs the {role.value} role")
    if principal.scopes is not None and scope not in principal.scopes:
        raise Forbidden(f"this API key is not allowed the {scope} scope")


def checked_key_access(role: str, scopes: list[str] | None, creator_role: str) -> tuple[UserRole, str | None]:
    """An API key's role (no higher than its creator's) and scopes (known ones), or InvalidInput."""
    try:
        wanted = UserRole(role)
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in UserRole)}") from None
    if ROLE_RANK[wanted] > ROLE_RANK[UserRole(creator_role)]:
        raise InvalidInput(f"an API key's role cannot be higher than its creator's ({creator_role})")
    if scopes is None:
        return wanted, None
    unknown = sorted(set(scopes) - SCOPES.keys())
    if unknown:
        raise InvalidInput(f"unknown scopes {', '.join(unknown)}: use {', '.join(SCOPES)}")
    return wanted, " ".join(sorted(set(scopes)))
