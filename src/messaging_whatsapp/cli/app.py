"""The `messaging-whatsapp` command line: the Typer app, and every command in the order `--help` lists
them (also `python -m messaging_whatsapp.cli`)."""

from __future__ import annotations

from collections.abc import Callable

import typer

from messaging_whatsapp.cli import (
    campaigns,
    demo,
    engine,
    gateways,
    keys,
    messages,
    numbers,
    privacy,
    retention,
    streams,
    tenants,
)

COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("migrate", engine.migrate),
    ("create-tenant", tenants.create_tenant),
    ("update-tenant", tenants.update_tenant),
    ("create-user", tenants.create_user),
    ("list-users", tenants.list_users),
    ("deactivate-user", tenants.deactivate_user),
    ("create-api-key", tenants.create_api_key),
    ("list-api-keys", tenants.list_api_keys),
    ("revoke-api-key", tenants.revoke_api_key),
    ("bind-tenant", numbers.bind_tenant),
    ("list-bindings", numbers.list_bindings),
    ("pause-instance", numbers.pause_instance),
    ("resume-instance", numbers.resume_instance),
    ("update-binding", numbers.update_binding),
    ("unbind", numbers.unbind),
    ("rotate-keys", keys.rotate_keys),
    ("list-conversations", messages.list_conversations),
    ("erase-contact", privacy.erase_contact),
    ("export-contact", privacy.export_contact),
    ("stream-info", streams.stream_info),
    ("replay-dlq", streams.replay_dlq),
    ("purge-dlq", streams.purge_dlq),
    ("apply-retention", retention.apply_retention),
    ("serve", engine.serve),
    ("worker", engine.worker),
    ("scheduler", engine.scheduler),
    ("send-test", messages.send_test),
    ("simulate-inbound", messages.simulate_inbound),
    ("demo", demo.demo),
    ("evolution-create-instance", gateways.evolution_create_instance),
    ("evolution-connect", gateways.evolution_connect),
    ("evolution-list-instances", gateways.evolution_list_instances),
    ("evolution-instance-status", gateways.evolution_instance_status),
    ("wuzapi-connect", gateways.wuzapi_connect),
    ("wuzapi-list-instances", gateways.wuzapi_list_instances),
    ("wuzapi-instance-status", gateways.wuzapi_instance_status),
    ("campaign-create", campaigns.campaign_create),
    ("campaign-import", campaigns.campaign_import),
    ("campaign-start", campaigns.campaign_start),
    ("campaign-pause", campaigns.campaign_pause),
    ("campaign-resume", campaigns.campaign_resume),
    ("campaign-cancel", campaigns.campaign_cancel),
    ("campaign-status", campaigns.campaign_status),
    ("campaign-list", campaigns.campaign_list),
)

app = typer.Typer(
    name="messaging-whatsapp",
    help="Multi-tenant WhatsApp messaging engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for name, command in COMMANDS:
    app.command(name)(command)


def main() -> None:
    """Entry point of the console script."""
    app()
