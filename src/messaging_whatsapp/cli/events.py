"""Events in from the terminal: `publish-event` appends an event to events:materials exactly as a
producer with Redis (or POST /api/v1/events) would, for operators and testing."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer

from messaging_whatsapp.cli.support import JsonOption, fail, in_session, print_json, run_engine, stdout
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.notifications import service
from messaging_whatsapp.tenancy import service as tenancy_service


def publish_event(
    tenant_id: Annotated[str, typer.Option(help="The tenant the event is for.")],
    event_type: Annotated[str, typer.Option("--type", help="quote_created, order_status_changed, ...")],
    payload: Annotated[str, typer.Option(help='The payload, a JSON object: {"customer_phone": ...}.')],
    event_id: Annotated[
        str | None,
        typer.Option("--id", help="The event's id (a new one when omitted); the same id notifies once."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Publish an event on events:materials (what became of it: GET /api/v1/events)."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise fail(f"--payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise fail("--payload must be a JSON object")
    if not event_type.strip() or len(event_type) > 100:
        raise fail("--type must be 1 to 100 characters")
    chosen_id = event_id or str(uuid.uuid4())
    if not chosen_id.strip() or len(chosen_id) > 200:
        raise fail("--id must be 1 to 200 characters")

    async def work(context: EngineContext) -> dict[str, Any]:
        await in_session(context, lambda session: tenancy_service.get_tenant(session, tenant_id))
        entry = service.materials_entry(tenant_id, chosen_id, event_type.strip(), body)
        entry_id = await service.publish_event(context.streams, context.names.materials, entry)
        return {"id": chosen_id, "status": "accepted", "entry_id": entry_id}

    published = run_engine(work)
    if as_json:
        print_json(published)
        return
    stdout.print(f"published {published['id']} on events:materials (entry {published['entry_id']})")
