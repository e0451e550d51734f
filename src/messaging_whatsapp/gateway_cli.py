"""Commands for the QR-code gateways (Evolution API, WuzAPI): create, connect, list, status.

``register(app)`` adds them to the ``messaging-whatsapp`` command line. Like the other commands,
user and gateway mistakes print one line to stderr and exit 1; JSON goes to stdout. This module
does not import ``messaging_whatsapp.cli`` (which imports it), so it has its own small runner.

QR codes are drawn with Unicode half blocks, two module rows per text line. Evolution gives the
code's text, which segno turns back into modules; WuzAPI gives only a PNG, whose module grid is
read back from the pixels (pypng decodes it, without Pillow). By default the light modules are
drawn (for the usual dark terminal background); ``--invert-qr`` draws the dark ones instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import logging
import sys
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TextIO
from urllib.parse import urlsplit

import httpx
import png  # type: ignore[import-untyped]
import pydantic
import segno
import typer
from rich.markup import escape
from rich.table import Table

from messaging_whatsapp import migrate as migrations
from messaging_whatsapp.cli_support import JsonOption, T, fail, print_json, stderr, stdout
from messaging_whatsapp.config import get_settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.crypto import CredentialsError
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.instances import gateway
from messaging_whatsapp.instances.gateway import (
    ConnectResult,
    CreatedInstance,
    GatewayLogin,
    InstanceRef,
    InstanceStatus,
    ListedInstance,
)
from messaging_whatsapp.instances.schemas import BoundInstance, InstanceItem
from messaging_whatsapp.providers.base import ConnectionState, ProviderName, SendError
from messaging_whatsapp.streams.base import StreamError

Matrix = list[list[bool]]
# Light modules around the code that scanners need (ISO 18004 asks for 4).
QUIET_ZONE = 4
_FINDER = 7
_MAX_PNG_SIDE = 4096
_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}

_GATEWAY_NAMES = {ProviderName.EVOLUTION: "Evolution API", ProviderName.WUZAPI: "WuzAPI"}
_HINTS = {
    "unauthorized": "check the key or token",
    "forbidden": "check the key or token",
    "instance_exists": "it already exists on the gateway: bind it with bind-tenant, then connect it",
    "instance_not_found": "the instance does not exist on the gateway (deleted there?)",
    "connect_error": "is the gateway running at that URL?",
    "unknown_outcome": "the gateway did not answer in time; check its state before trying again",
}
_COMMANDS = (
    "evolution-create-instance",
    "evolution-connect",
    "evolution-list-instances",
    "evolution-instance-status",
    "wuzapi-connect",
    "wuzapi-list-instances",
    "wuzapi-instance-status",
)


class QrDrawError(ValueError):
    """The QR code could not be read back into modules (not a PNG, or no code in it)."""


# --------------------------------------------------------------------------------------------------
# QR codes as terminal text


def matrix_from_text(text: str) -> Matrix:
    """The modules (True = dark, no quiet zone) of the QR code that encodes ``text``."""
    qr = segno.make_qr(text)
    return [[bool(module) for module in row] for row in qr.matrix_iter(scale=1, border=0)]


def _dark_pixels(data: bytes) -> list[list[bool]]:
    try:
        reader = png.Reader(bytes=data)
        reader.preamble()
        if reader.width > _MAX_PNG_SIDE or reader.height > _MAX_PNG_SIDE:
            raise QrDrawError(f"the QR image is too large ({reader.width}x{reader.height})")
        width, _height, rows, _info = reader.asRGBA8()
        pixels: list[list[bool]] = []
        for row in rows:
            values = list(row)
            pixels.append(
                [
                    values[4 * x + 3] >= 128
                    and (299 * values[4 * x] + 587 * values[4 * x + 1] + 114 * values[4 * x + 2]) < 128_000
                    for x in range(width)
                ]
            )
    except (png.Error, zlib.error, ValueError, EOFError, IndexError) as exc:
        if isinstance(exc, QrDrawError):
            raise
        raise QrDrawError(f"the QR image is not a readable PNG ({exc})") from exc
    return pixels


def _is_finder(matrix: Matrix, top: int, left: int) -> bool:
    """Whether the 7x7 square at (top, left) is a finder pattern: dark ring, light ring, dark core."""
    for row in range(_FINDER):
        for col in range(_FINDER):
            ring = min(row, col, _FINDER - 1 - row, _FINDER - 1 - col)
            if matrix[top + row][left + col] != (ring != 1):
                return False
    return True


def _size_from_timing(row: Sequence[bool]) -> int | None:
    """Modules per side from the pixel row through module row 6, or None when it does not add up.

    That row is the finders' bottom edges (7 dark modules at each end) joined by the timing pattern
    (alternating, dark first and last) with one light separator on each side: n - 12 runs in all.
    """
    runs = 1 + sum(1 for before, after in itertools.pairwise(row) if before != after)
    size = runs + 12
    if 21 <= size <= 177 and size % 4 == 1 and row[0] and row[-1]:
        return size
    return None


def matrix_from_pixels(dark: Sequence[Sequence[bool]]) -> Matrix:
    """The modules of the one QR code in a bitmap, however many pixels wide its modules are.

    The code's extent is the box around its dark pixels; the top-left finder pattern (7 modules
    wide) gives the module size roughly, the timing pattern the exact number of modules, and each
    module is read at its centre. Scaling that is not a whole number of pixels per module (WuzAPI's
    256-pixel images) is fine as long as every module is at least about a pixel and a half.
    """
    lines = [(y, row) for y, row in enumerate(dark) if any(row)]
    if not lines:
        raise QrDrawError("there is no QR code in the image")
    top, bottom = lines[0][0], lines[-1][0]
    left = min(list(row).index(True) for _, row in lines)
    right = max(len(row) - 1 - list(row)[::-1].index(True) for _, row in lines)
    width, height = right - left + 1, bottom - top + 1
    run = 0
    while left + run <= right and dark[top][left + run]:
        run += 1
    module = run / _FINDER
    if module < 1 or abs(width - height) > 2 * module:
        raise QrDrawError("the image does not look like a QR code")
    size = _size_from_timing(dark[top + int(6.5 * module)][left : right + 1])
    if size is None:
        version = max(1, min(40, round((width / module - 17) / 4)))
        size = 17 + 4 * version
    pitch_x, pitch_y = width / size, height / size
    matrix = [
        [dark[top + int((r + 0.5) * pitch_y)][left + int((c + 0.5) * pitch_x)] for c in range(size)]
        for r in range(size)
    ]
    corners = ((0, 0), (0, size - _FINDER), (size - _FINDER, 0))
    if not all(_is_finder(matrix, row, col) for row, col in corners):
        raise QrDrawError("could not find the QR code's corner patterns in the image")
    return matrix


def matrix_from_png(data: bytes) -> Matrix:
    """The modules of the QR code drawn in a PNG image."""
    return matrix_from_pixels(_dark_pixels(data))


def qr_lines(matrix: Matrix, *, invert: bool = False) -> list[str]:
    """The code as half-block text lines with its quiet zone.

    Light modules are ink by default, so the code reads correctly on a dark terminal; with
    ``invert`` the dark modules are ink, for a light background.
    """
    size = len(matrix)
    total = size + 2 * QUIET_ZONE

    def ink(row: int, col: int) -> bool:
        if row >= total:
            return False  # below the drawing: the terminal's own background
        r, c = row - QUIET_ZONE, col - QUIET_ZONE
        is_dark = 0 <= r < size and 0 <= c < size and matrix[r][c]
        return is_dark == invert

    return [
        "".join(_HALF_BLOCKS[ink(row, col), ink(row + 1, col)] for col in range(total)).rstrip()
        for row in range(0, total, 2)
    ]


def _ascii_lines(matrix: Matrix, *, invert: bool) -> list[str]:
    """Two characters per module, one line per module row: for terminals without block characters."""
    size = len(matrix)
    total = size + 2 * QUIET_ZONE
    lines = []
    for row in range(total):
        cells = []
        for col in range(total):
            r, c = row - QUIET_ZONE, col - QUIET_ZONE
            is_dark = 0 <= r < size and 0 <= c < size and matrix[r][c]
            cells.append("##" if is_dark == invert else "  ")
        lines.append("".join(cells).rstrip())
    return lines


def challenge_matrix(qr_code: str | None, qr_image_base64: str | None) -> Matrix | None:
    """The modules to draw: from the code's text when the gateway gave it, else from its PNG."""
    if qr_code:
        return matrix_from_text(qr_code)
    if qr_image_base64:
        try:
            data = base64.b64decode(qr_image_base64, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise QrDrawError(f"the QR image is not valid base64 ({exc})") from exc
        return matrix_from_png(data)
    return None


def draw_qr(matrix: Matrix, stream: TextIO, *, invert: bool = False) -> None:
    """Write the code to ``stream``, in ASCII when its encoding has no block characters."""
    try:
        "█▀▄".encode(getattr(stream, "encoding", None) or "utf-8")
        lines = qr_lines(matrix, invert=invert)
    except (UnicodeEncodeError, LookupError):
        lines = _ascii_lines(matrix, invert=invert)
    stream.write("\n".join(lines) + "\n")
    stream.flush()


# --------------------------------------------------------------------------------------------------
# Running


def _say(message: str, *, to_stderr: bool = False) -> None:
    (stderr if to_stderr else stdout).print(message, markup=False, highlight=False, soft_wrap=True)


def _gateway_message(provider: ProviderName, exc: SendError) -> str:
    status = f", HTTP {exc.http_status}" if exc.http_status else ""
    hint = _HINTS.get(exc.code)
    return f"{_GATEWAY_NAMES[provider]}: {exc.title} ({exc.code}{status})" + (f"; {hint}" if hint else "")


def _validation_message(exc: pydantic.ValidationError) -> str:
    parts = [f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()]
    return "; ".join(parts)


def _run(provider: ProviderName, work: Callable[[EngineContext], Awaitable[T]]) -> T:
    """Open the engine context (migrating first), run ``work``, turn every expected error into exit 1."""
    settings = get_settings()
    # httpx logs request URLs at INFO, and webhook URLs carry per-instance secrets.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main() -> T:
        await migrations.upgrade_async(settings.database_url)
        context = await EngineContext.open(settings)
        try:
            return await work(context)
        finally:
            await context.close()

    try:
        return asyncio.run(main())
    except SendError as exc:
        raise fail(_gateway_message(provider, exc)) from None
    except EngineError as exc:
        raise fail(exc.message) from None
    except pydantic.ValidationError as exc:
        raise fail(_validation_message(exc)) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise fail(f"{_GATEWAY_NAMES[provider]}: {exc}") from None
    except (StreamError, CredentialsError, ValueError, OSError) as exc:
        raise fail(str(exc)) from None


def _warn_if_unreachable_public_url() -> None:
    public_url = get_settings().public_url
    if (urlsplit(public_url).hostname or "") in _LOOPBACK_HOSTS:
        _say(
            f"note: PUBLIC_URL is {public_url}; a gateway on another host or in a container cannot "
            "post webhooks there (set PUBLIC_URL to an address it can reach)",
            to_stderr=True,
        )


def _ref(instance_id: str | None, instance_name: str | None) -> InstanceRef:
    if bool(instance_id) == bool(instance_name):
        raise fail("give exactly one of --instance-id and --instance-name")
    return InstanceRef(instance_id=instance_id, instance_name=instance_name)


def _secret(value: pydantic.SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# --------------------------------------------------------------------------------------------------
# Output


def _created_json(created: CreatedInstance) -> dict[str, Any]:
    item = InstanceItem.of(created.instance, utcnow())
    bound = BoundInstance(**item.model_dump(), webhook_url=created.webhook_url)
    return {
        **bound.model_dump(mode="json"),
        "tenant_id": created.instance.tenant_id,
        "api_url": created.instance.api_url,
        "gateway_state": created.gateway.state.value,
        "own_token": created.own_token,
    }


def _show_created(provider: ProviderName, created: CreatedInstance) -> None:
    instance = created.instance
    _say(
        f"{provider.value} instance {instance.instance_name} created on {instance.api_url} and bound as "
        f"instance {instance.id} (number {instance.display_number})"
    )
    _say(f"gateway state: {created.gateway.state.value}; webhook registered")
    if not created.own_token:
        _say("the gateway returned no instance token: the global key is stored for this instance")


def _connect_json(result: ConnectResult) -> dict[str, Any]:
    challenge = result.challenge
    return {
        "instance_id": result.instance.id,
        "instance_name": result.instance.instance_name,
        "provider": result.instance.provider,
        "state": challenge.state.value,
        "qr_code": challenge.qr_code,
        "qr_image_base64": challenge.qr_image_base64,
        "pairing_code": challenge.pairing_code,
    }


def _show_connect(
    provider: ProviderName,
    result: ConnectResult,
    *,
    show_qr: bool,
    pairing: bool,
    invert: bool,
    as_json: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    """Print the connect answer; exit 1 when what was asked for (QR, pairing code) did not come."""
    challenge = result.challenge
    name = result.instance.instance_name or result.instance.routing_key
    if as_json:
        print_json({**_connect_json(result), **(extra or {})})
    if challenge.state is ConnectionState.OPEN:
        if not as_json:
            _say(f"{name} is already connected (state open): nothing to scan")
        return
    if pairing:
        if not challenge.pairing_code:
            raise fail(
                f"{_GATEWAY_NAMES[provider]} returned no pairing code for {name} (state "
                f"{challenge.state.value}); it may already be waiting for a QR code: try again shortly"
            )
        if not as_json:
            _say(f"pairing code for {name}: {challenge.pairing_code}")
            _say(
                "on the phone: WhatsApp > Linked devices > Link a device > Link with phone number "
                "instead, then type the code"
            )
        return
    if show_qr:
        try:
            matrix = challenge_matrix(challenge.qr_code, challenge.qr_image_base64)
        except QrDrawError as exc:
            raise fail(f"could not draw the QR code: {exc}") from None
        if matrix is None:
            raise fail(
                f"{_GATEWAY_NAMES[provider]} has no QR code for {name} yet; try again in a few seconds"
            )
        if not as_json:
            _say(f"scan with WhatsApp on the phone (Linked devices > Link a device) to connect {name}:")
        # With --json, stdout is the JSON alone: the drawing goes to stderr.
        draw_qr(matrix, sys.stderr if as_json else sys.stdout, invert=invert)
        if not as_json and not invert:
            _say("(drawn for a dark terminal; add --invert-qr on a light background)")
        return
    if not as_json:
        ready = challenge.qr_code or challenge.qr_image_base64
        state = challenge.state.value
        _say(
            f"{name}: state {state}; "
            + ("a QR code is ready: add --show-qr to draw it" if ready else "no QR yet")
        )


def _status_json(status: InstanceStatus) -> dict[str, Any]:
    return {
        "instance_id": status.instance.id,
        "instance_name": status.instance.instance_name,
        "provider": status.instance.provider,
        "state": status.gateway.state.value,
        "owner": status.gateway.owner,
        "recorded_state": status.instance.connection_state,
    }


def _show_status(status: InstanceStatus, as_json: bool) -> None:
    if as_json:
        print_json(_status_json(status))
        return
    owner = f", number {status.gateway.owner}" if status.gateway.owner else ""
    _say(
        f"{status.instance.instance_name} (instance {status.instance.id}): gateway says "
        f"{status.gateway.state.value}{owner}; recorded here: {status.instance.connection_state}"
    )


def _show_listing(items: list[ListedInstance], as_json: bool) -> None:
    # Instance tokens are secrets: never shown.
    rows = [
        {
            "name": item.gateway.name,
            "state": item.gateway.state.value,
            "owner": item.gateway.owner,
            "bound_instance_id": item.bound_instance_id,
        }
        for item in items
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "state", "number", "bound as")
    for row in rows:
        table.add_row(
            escape(str(row["name"])), str(row["state"]), row["owner"] or "", row["bound_instance_id"] or "-"
        )
    stdout.print(table)


# --------------------------------------------------------------------------------------------------
# Commands

InstanceIdOption = Annotated[
    str | None, typer.Option("--instance-id", help="Our instance id (see list-bindings).")
]
InstanceNameOption = Annotated[
    str | None, typer.Option("--instance-name", help="The instance's name on the gateway.")
]
ShowQrOption = Annotated[bool, typer.Option("--show-qr", help="Draw the QR code in the terminal.")]
InvertQrOption = Annotated[
    bool, typer.Option("--invert-qr", help="Draw the QR code for a light terminal background.")
]
PairingOption = Annotated[
    str | None,
    typer.Option(
        "--pairing-code",
        metavar="PHONE",
        help="Ask for a pairing code for this phone (country code and number) instead of a QR code.",
    ),
]
NameOption = Annotated[str | None, typer.Option("--name", help="A label for the number.")]
DisplayNumberOption = Annotated[
    str | None, typer.Option("--display-number", help="The WhatsApp number to link, E.164.")
]


def evolution_create_instance(
    tenant_id: Annotated[str, typer.Option("--tenant-id", help="The tenant the number belongs to.")],
    display_number: Annotated[str, typer.Option("--display-number", help="The WhatsApp number, E.164.")],
    instance_name: Annotated[
        str | None,
        typer.Option("--instance-name", help="Name on Evolution [default: EVOLUTION_INSTANCE_NAME]."),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Evolution's base URL [default: EVOLUTION_API_URL].")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Evolution's global API key [default: EVOLUTION_API_KEY]."),
    ] = None,
    name: NameOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an instance on Evolution API with our webhook and bind it to the tenant."""
    settings = get_settings()
    login = GatewayLogin(
        api_url=api_url or settings.evolution_api_url, api_key=api_key or _secret(settings.evolution_api_key)
    )

    async def work(context: EngineContext) -> CreatedInstance:
        return await gateway.create_instance(
            context,
            tenant_id,
            ProviderName.EVOLUTION,
            login,
            instance_name=instance_name or settings.evolution_instance_name,
            display_number=display_number,
            name=name,
        )

    created = _run(ProviderName.EVOLUTION, work)
    if as_json:
        print_json(_created_json(created))
        return
    _show_created(ProviderName.EVOLUTION, created)
    _warn_if_unreachable_public_url()
    _say(f"next: messaging-whatsapp evolution-connect --instance-id {created.instance.id} --show-qr")


def evolution_connect(
    instance_id: InstanceIdOption = None,
    instance_name: InstanceNameOption = None,
    show_qr: ShowQrOption = False,
    pairing_code: PairingOption = None,
    invert_qr: InvertQrOption = False,
    as_json: JsonOption = False,
) -> None:
    """Point a bound Evolution instance's webhook at us and link a phone (QR or pairing code)."""
    ref = _ref(instance_id, instance_name)

    async def work(context: EngineContext) -> ConnectResult:
        return await gateway.connect_instance(context, ProviderName.EVOLUTION, ref, phone=pairing_code)

    result = _run(ProviderName.EVOLUTION, work)
    _show_connect(
        ProviderName.EVOLUTION,
        result,
        show_qr=show_qr,
        pairing=pairing_code is not None,
        invert=invert_qr,
        as_json=as_json,
    )


def evolution_list_instances(
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Evolution's base URL [default: EVOLUTION_API_URL].")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Evolution's global API key [default: EVOLUTION_API_KEY]."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List every instance on Evolution API, and which are bound here."""
    settings = get_settings()
    login = GatewayLogin(
        api_url=api_url or settings.evolution_api_url, api_key=api_key or _secret(settings.evolution_api_key)
    )

    async def work(context: EngineContext) -> list[ListedInstance]:
        return await gateway.list_gateway_instances(context, ProviderName.EVOLUTION, login)

    _show_listing(_run(ProviderName.EVOLUTION, work), as_json)


def evolution_instance_status(
    instance_id: InstanceIdOption = None,
    instance_name: InstanceNameOption = None,
    as_json: JsonOption = False,
) -> None:
    """A bound Evolution instance's connection state as the gateway reports it."""
    ref = _ref(instance_id, instance_name)

    async def work(context: EngineContext) -> InstanceStatus:
        return await gateway.instance_status(context, ProviderName.EVOLUTION, ref)

    _show_status(_run(ProviderName.EVOLUTION, work), as_json)


def wuzapi_connect(
    instance_id: InstanceIdOption = None,
    instance_name: InstanceNameOption = None,
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="Create the WuzAPI user first and bind it (needs --tenant-id, --instance-name, "
            "--display-number, --api-url, --admin-token).",
        ),
    ] = False,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id", help="With --create: the tenant.")] = None,
    display_number: DisplayNumberOption = None,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", envvar="WUZAPI_API_URL", help="With --create: WuzAPI's base URL."),
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            "--admin-token", envvar="WUZAPI_ADMIN_TOKEN", help="With --create: WuzAPI's admin token."
        ),
    ] = None,
    name: NameOption = None,
    show_qr: ShowQrOption = False,
    pairing_code: PairingOption = None,
    invert_qr: InvertQrOption = False,
    as_json: JsonOption = False,
) -> None:
    """Link a phone to a WuzAPI user (QR or pairing code); with --create, create and bind it first."""
    provider = ProviderName.WUZAPI
    if create:
        if instance_id:
            raise fail("--create makes a new instance: give --instance-name, not --instance-id")
        if not tenant_id or not instance_name or not display_number:
            raise fail("--create needs --tenant-id, --instance-name and --display-number")
    elif tenant_id or display_number:
        raise fail("--tenant-id and --display-number go with --create")
    ref = None if create else _ref(instance_id, instance_name)
    login = GatewayLogin(api_url=api_url, admin_token=admin_token)

    async def work(context: EngineContext) -> tuple[CreatedInstance | None, ConnectResult]:
        created = None
        target = ref
        if target is None:
            created = await gateway.create_instance(
                context,
                tenant_id or "",
                provider,
                login,
                instance_name=instance_name,
                display_number=display_number or "",
                name=name,
            )
            target = InstanceRef(instance_id=created.instance.id)
        try:
            result = await gateway.connect_instance(context, provider, target, phone=pairing_code)
        except SendError as exc:
            if created is None:
                raise
            raise EngineError(
                f"instance {instance_name} was created and bound as {created.instance.id}, but connecting "
                f"failed: {_gateway_message(provider, exc)}; run wuzapi-connect --instance-id "
                f"{created.instance.id} again"
            ) from exc
        return created, result

    created, result = _run(provider, work)
    extra = None
    if created is not None:
        if as_json:
            extra = {"created": _created_json(created)}
        else:
            _show_created(provider, created)
            _warn_if_unreachable_public_url()
    _show_connect(
        provider,
        result,
        show_qr=show_qr,
        pairing=pairing_code is not None,
        invert=invert_qr,
        as_json=as_json,
        extra=extra,
    )


def wuzapi_list_instances(
    api_url: Annotated[
        str | None, typer.Option("--api-url", envvar="WUZAPI_API_URL", help="WuzAPI's base URL.")
    ] = None,
    admin_token: Annotated[
        str | None, typer.Option("--admin-token", envvar="WUZAPI_ADMIN_TOKEN", help="WuzAPI's admin token.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List every WuzAPI user (instance), and which are bound here."""
    login = GatewayLogin(api_url=api_url, admin_token=admin_token)

    async def work(context: EngineContext) -> list[ListedInstance]:
        return await gateway.list_gateway_instances(context, ProviderName.WUZAPI, login)

    _show_listing(_run(ProviderName.WUZAPI, work), as_json)


def wuzapi_instance_status(
    instance_id: InstanceIdOption = None,
    instance_name: InstanceNameOption = None,
    as_json: JsonOption = False,
) -> None:
    """A bound WuzAPI instance's session state as the gateway reports it."""
    ref = _ref(instance_id, instance_name)

    async def work(context: EngineContext) -> InstanceStatus:
        return await gateway.instance_status(context, ProviderName.WUZAPI, ref)

    _show_status(_run(ProviderName.WUZAPI, work), as_json)


def register(app: typer.Typer) -> None:
    """Add the gateway commands to ``app`` (a second call adds nothing)."""
    if any(command.name == _COMMANDS[0] for command in app.registered_commands):
        return
    functions: tuple[Callable[..., None], ...] = (
        evolution_create_instance,
        evolution_connect,
        evolution_list_instances,
        evolution_instance_status,
        wuzapi_connect,
        wuzapi_list_instances,
        wuzapi_instance_status,
    )
    for command_name, function in zip(_COMMANDS, functions, strict=True):
        app.command(command_name)(function)
