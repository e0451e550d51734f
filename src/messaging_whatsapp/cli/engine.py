"""The engine's processes: `migrate`, `serve` (the HTTP server, and in role `all` the workers too),
`worker` and `scheduler`."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
from typing import Annotated

import typer

from messaging_whatsapp import migrate as migrations
from messaging_whatsapp.cli.support import configure_logging, fail, run_engine, stderr
from messaging_whatsapp.config import get_settings
from messaging_whatsapp.context import EngineContext, settle_garbage_collector


def migrate() -> None:
    """Create or upgrade the database schema."""
    settings = get_settings()
    try:
        migrations.upgrade(settings.database_url)
    except Exception as exc:
        raise fail(f"migration failed: {exc}") from None
    stderr.print("database is up to date")


def serve(
    role: Annotated[str, typer.Option(help="all (API, webhook and workers), api or webhook.")] = "all",
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="Create a demo tenant and print its login.")] = False,
    workers: Annotated[int, typer.Option(help="HTTP worker processes (api/webhook roles).")] = 1,
) -> None:
    """Run the HTTP server (and, for role all, the workers in process)."""
    import uvicorn

    from messaging_whatsapp.api.app import Role
    from messaging_whatsapp.api.serving import GuardedHttpToolsProtocol, http_protocol

    try:
        server_role = Role(role)
    except ValueError:
        raise fail(f"--role must be one of {', '.join(r.value for r in Role)}") from None
    if workers > 1 and server_role is Role.ALL:
        raise fail("--workers > 1 needs --role api or webhook (run `worker` processes for the rest)")
    _check_port(host, port)
    settings = get_settings()
    configure_logging(settings)

    async def prepare(context: EngineContext) -> None:
        from messaging_whatsapp.cli.demo import announce_demo

        if demo:
            await announce_demo(context)

    run_engine(prepare)
    stderr.print(f"messaging-whatsapp ({server_role.value}) on http://{host}:{port}  docs: /docs")
    if workers > 1:
        factory = f"messaging_whatsapp.api.asgi:{server_role.value}_app"
        # Each spawned worker reads the header and body timeouts and the per-client cap from its
        # environment, as it reads the app's settings; each counts its own connections.
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            http=GuardedHttpToolsProtocol,
        )
        return
    from messaging_whatsapp.api.app import create_app

    uvicorn.run(
        create_app(settings, server_role),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http=http_protocol(settings),
    )


def _check_port(host: str, port: int) -> None:
    """Fail at once, before anything is printed or prepared, when the address cannot be listened on."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, protocol, _, address = addresses[0]
    with socket.socket(family, kind, protocol) as probe:
        # As uvicorn binds: a port left in TIME_WAIT is free, one being listened on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            busy = exc.errno == errno.EADDRINUSE
            raise fail(
                f"cannot listen on {host}:{port}: "
                + (
                    "the port is in use (another server? stop it, or choose another port: "
                    "--port, or `make run PORT=8001`)"
                    if busy
                    else str(exc.strerror)
                )
            ) from None


WORKER_ROLES = ("all", "inbound", "sender", "dispatcher", "scheduler", "webhooks")


def worker(
    role: Annotated[
        str,
        typer.Option(
            help="all (inbound with events in, sender, campaign dispatcher, scheduler and webhooks), "
            "inbound, sender, dispatcher, scheduler or webhooks (events out over HTTP)."
        ),
    ] = "all",
) -> None:
    """Run workers until interrupted (run as many as you like, on any host)."""
    if role not in WORKER_ROLES:
        raise fail(f"--role must be one of {', '.join(WORKER_ROLES)}")
    _run_workers(role)


def scheduler() -> None:
    """Run the time-driven work: campaigns (scheduled starts and their dispatch), closing idle
    tickets and data retention. Several may run."""
    _run_workers("dispatcher", "scheduler", label="scheduler")


def _run_workers(*roles: str, label: str | None = None) -> None:
    settings = get_settings()
    configure_logging(settings)
    wanted = set(WORKER_ROLES[1:]) if "all" in roles else set(roles)

    # The workers are imported by the commands that run them only (`migrate` needs none).
    from messaging_whatsapp.campaigns.dispatcher import Dispatcher
    from messaging_whatsapp.integrations.tasks import WebhookWorker
    from messaging_whatsapp.ops.heartbeat import Heartbeat
    from messaging_whatsapp.worker.inbound import run_inbound_workers
    from messaging_whatsapp.worker.notifications import run_notifications_worker
    from messaging_whatsapp.worker.scheduler import Scheduler
    from messaging_whatsapp.worker.sender import Sender

    async def work(context: EngineContext) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        settle_garbage_collector()
        name = label or ("worker" if "all" in roles else roles[0])
        runners = [Heartbeat(context, name, sorted(wanted, key=WORKER_ROLES.index)).run(stop)]
        if "inbound" in wanted:
            runners.append(run_inbound_workers(context, stop))
            # Events in (events:materials) are inbound too: the same workers consume them.
            runners.append(run_notifications_worker(context, stop))
        if "sender" in wanted:
            runners.append(Sender(context).run(stop))
        if "dispatcher" in wanted:
            runners.append(Dispatcher(context).run(stop))
        if "scheduler" in wanted:
            runners.append(Scheduler(context).run(stop))
        if "webhooks" in wanted:
            runners.append(WebhookWorker(context).run(stop))
        stderr.print(f"{label or roles[0]} worker running; Ctrl-C to stop")
        await asyncio.gather(*runners)

    run_engine(work)
