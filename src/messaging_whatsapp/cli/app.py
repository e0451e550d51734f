"""The `messaging-whatsapp` command line: the Typer app, and every command in the order `--help` lists
them (also `python -m messaging_whatsapp.cli`).

Commands are loaded lazily: a command's module (and the engine it imports: SQLAlchemy, the
domains, Alembic) is imported only when that command runs, and `--help` reads the commands'
summaries from their modules' source. Importing every module took about 1.1 s before each command
(docs/benchmarks.md, "CLI start-up").
"""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

# Each command and where it lives: `module:function` of cli/.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("migrate", "engine:migrate"),
    ("create-tenant", "tenants:create_tenant"),
    ("update-tenant", "tenants:update_tenant"),
    ("create-user", "tenants:create_user"),
    ("list-users", "tenants:list_users"),
    ("deactivate-user", "tenants:deactivate_user"),
    ("create-api-key", "tenants:create_api_key"),
    ("list-api-keys", "tenants:list_api_keys"),
    ("revoke-api-key", "tenants:revoke_api_key"),
    ("bind-tenant", "numbers:bind_tenant"),
    ("list-bindings", "numbers:list_bindings"),
    ("pause-instance", "numbers:pause_instance"),
    ("resume-instance", "numbers:resume_instance"),
    ("update-binding", "numbers:update_binding"),
    ("unbind", "numbers:unbind"),
    ("rotate-keys", "keys:rotate_keys"),
    ("list-conversations", "messages:list_conversations"),
    ("erase-contact", "privacy:erase_contact"),
    ("export-contact", "privacy:export_contact"),
    ("stream-info", "streams:stream_info"),
    ("replay-dlq", "streams:replay_dlq"),
    ("purge-dlq", "streams:purge_dlq"),
    ("apply-retention", "retention:apply_retention"),
    ("rebuild-analytics", "analytics:rebuild_analytics"),
    ("serve", "engine:serve"),
    ("worker", "engine:worker"),
    ("scheduler", "engine:scheduler"),
    ("send-test", "messages:send_test"),
    ("publish-event", "events:publish_event"),
    ("simulate-inbound", "messages:simulate_inbound"),
    ("demo", "demo:demo"),
    ("evolution-create-instance", "gateways:evolution_create_instance"),
    ("evolution-connect", "gateways:evolution_connect"),
    ("evolution-list-instances", "gateways:evolution_list_instances"),
    ("evolution-instance-status", "gateways:evolution_instance_status"),
    ("wuzapi-connect", "gateways:wuzapi_connect"),
    ("wuzapi-list-instances", "gateways:wuzapi_list_instances"),
    ("wuzapi-instance-status", "gateways:wuzapi_instance_status"),
    ("campaign-create", "campaigns:campaign_create"),
    ("campaign-import", "campaigns:campaign_import"),
    ("campaign-start", "campaigns:campaign_start"),
    ("campaign-pause", "campaigns:campaign_pause"),
    ("campaign-resume", "campaigns:campaign_resume"),
    ("campaign-cancel", "campaigns:campaign_cancel"),
    ("campaign-status", "campaigns:campaign_status"),
    ("campaign-list", "campaigns:campaign_list"),
    ("sync-templates", "templates:sync_templates"),
    ("list-templates", "templates:list_templates"),
)
TARGETS = dict(COMMANDS)
_CLI_DIR = Path(__file__).parent


@cache
def _docstrings(module: str) -> dict[str, str]:
    """The docstrings of a command module's functions, read from its source without importing it."""
    tree = ast.parse((_CLI_DIR / f"{module}.py").read_text(encoding="utf-8"))
    return {
        node.name: ast.get_docstring(node) or "" for node in tree.body if isinstance(node, ast.FunctionDef)
    }


def summary(name: str) -> str:
    """A command's help as `--help` lists it: its function's docstring."""
    module, function = TARGETS[name].split(":")
    return _docstrings(module).get(function, "")


def load_command(name: str) -> Any:
    """A command's function, importing its module."""
    module, function = TARGETS[name].split(":")
    return getattr(importlib.import_module(f"messaging_whatsapp.cli.{module}"), function)


class LazyGroup(TyperGroup):
    """A group whose commands are imported only when one runs (or its own --help is asked for)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        # Named, so that a mistyped command gets "Did you mean ...?".
        for name in TARGETS:
            self.commands.setdefault(name, TyperCommand(name))

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command, in --help order."""
        return list(TARGETS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command to run, built from its function; while listing, its name and summary only."""
        if cmd_name not in TARGETS:
            return None
        if self._listing:
            return TyperCommand(cmd_name, help=summary(cmd_name))
        single = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        single.command(cmd_name)(load_command(cmd_name))
        return typer.main.get_command(single)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The group's help, listing the commands without importing them."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="messaging-whatsapp",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Multi-tenant WhatsApp messaging engine."""


def main() -> None:
    """Entry point of the console script."""
    app()
