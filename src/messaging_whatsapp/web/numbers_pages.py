"""The numbers page: each bound number's connection, status, health, today's counters and warm-up,
live through the event stream; pausing and resuming, binding a number and linking a gateway's phone
by QR code (admins).

Pause, resume and bind go from the browser to the instances API. The fragments are the pieces the
browser puts in place: a number's card when an event names it, and the QR code of a gateway's
number (connected through the same service as `POST /api/v1/instances/{id}/connect`, with the
same role, and drawn here as SVG).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import segno
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from messaging_whatsapp.campaigns.pacing import WarmupSchedule, warmup_start
from messaging_whatsapp.config import Settings
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.instances import gateway, service
from messaging_whatsapp.instances.models import InstanceStatus, WhatsAppInstance
from messaging_whatsapp.instances.schemas import InstanceItem
from messaging_whatsapp.instances.service import LINKED_LATER
from messaging_whatsapp.providers.base import ConnectChallenge, ProviderName
from messaging_whatsapp.tenancy.access import Principal
from messaging_whatsapp.tenancy.deps import NumberReader, NumberWriter
from messaging_whatsapp.tenancy.models import ROLE_RANK, UserRole
from messaging_whatsapp.web import queries
from messaging_whatsapp.web.i18n import Texts, choose_language
from messaging_whatsapp.web.render import page
from messaging_whatsapp.web.shell import open_shell, reaches

router = APIRouter(include_in_schema=False)
NUMBERS_PATH = "/numbers"

# Strings numbers.js shows (the page hands them over in its language).
SCRIPT_TEXTS = (
    "Paused.",
    "Resumed.",
    "Number bound.",
    "Required.",
    "Check the fields marked in red.",
    "Asking the gateway for a QR code...",
    "AI assistant mode saved.",
)
PROVIDER_NAMES = {
    ProviderName.META: "Meta Cloud API",
    ProviderName.TWILIO: "Twilio",
    ProviderName.EVOLUTION: "Evolution API",
    ProviderName.WUZAPI: "WuzAPI",
    ProviderName.SIMULATOR: "Simulator",
}
CONNECTION_NAMES = {"open": "Connected", "connecting": "Connecting", "close": "Disconnected"}
STATUS_NAMES = {"active": "Active", "paused": "Paused", "inactive": "Inactive", "unbound": "Unbound"}
HEALTH_NAMES = {"excellent": "Excellent", "good": "Good", "warning": "Warning", "critical": "Critical"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class Warmup:
    """Where a number is in its warm-up: its day, and what a warming campaign may send today."""

    day: int
    cap: int
    done: bool


@dataclass(frozen=True, slots=True)
class NumberCard:
    """One number as the page shows it: the API's item plus its warm-up and what it links by."""

    item: InstanceItem
    warmup: Warmup
    links_by_qr: bool

    @property
    def used_percent(self) -> int:
        """Today's sends as a share of the daily limit (0..100)."""
        if self.item.daily_limit <= 0:
            return 100 if self.item.msgs_sent_today else 0
        return min(100, round(100 * self.item.msgs_sent_today / self.item.daily_limit))


def warmup_of(instance: WhatsAppInstance, settings: Settings, now: datetime) -> Warmup:
    """The number's warm-up day (1 on the day it started) and today's warm-up cap."""
    started = warmup_start(instance, now)
    schedule = WarmupSchedule(settings.campaign_warmup_first_day, settings.campaign_warmup_growth)
    cap = schedule.cap(started, now, instance.daily_limit)
    return Warmup(day=max((now - started).days, 0) + 1, cap=cap, done=cap >= instance.daily_limit)


def card_of(instance: WhatsAppInstance, settings: Settings, now: datetime) -> NumberCard:
    """The card of one number as of `now`."""
    links_by_qr = ProviderName(instance.provider) in LINKED_LATER
    return NumberCard(InstanceItem.of(instance, now), warmup_of(instance, settings, now), links_by_qr)


def qr_markup(challenge: ConnectChallenge) -> Markup | None:
    """The QR code to scan as inline SVG drawn from the code's text, else the gateway's PNG as an
    image (checked to be a PNG first); None when the gateway gave neither."""
    if challenge.qr_code:
        svg = segno.make_qr(challenge.qr_code).svg_inline(scale=6, border=4, dark="#111b21", light="#fff")
        return Markup(svg)
    if not challenge.qr_image_base64:
        return None
    encoded = challenge.qr_image_base64.split(",", 1)[-1].strip()
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data.startswith(_PNG_SIGNATURE):
        return None
    source = "data:image/png;base64," + base64.b64encode(data).decode()
    return Markup('<img class="qr-image" alt="QR code" src="{}">').format(source)


def _texts(request: Request, timezone: str) -> Texts:
    return Texts(choose_language(request), timezone)


def _manages(principal: Principal) -> bool:
    """Whether the caller may bind, pause and resume numbers (the API's NumberWriter role)."""
    return ROLE_RANK[UserRole(principal.role)] >= ROLE_RANK[UserRole.ADMIN]


async def _cards(session: AsyncSession, tenant_id: str, settings: Settings) -> list[NumberCard]:
    now = utcnow()
    instances = await service.list_instances(session, tenant_id)
    return [
        card_of(instance, settings, now)
        for instance in instances
        if instance.status != InstanceStatus.UNBOUND.value
    ]


@router.get(NUMBERS_PATH)
async def numbers_page(request: Request, context: Context, session: DbSession) -> Response:
    """Every number of the tenant, live; the bind form and QR dialog for admins."""
    shell = await open_shell(request, context, role=UserRole.SUPERVISOR)
    if isinstance(shell, Response):
        return shell
    cards = await _cards(session, shell.principal.tenant_id, context.settings)
    return shell.render(
        "numbers/page.html",
        script_texts=SCRIPT_TEXTS,
        cards=cards,
        manages=reaches(shell.me, UserRole.ADMIN),
        **_names(),
    )


@router.get(NUMBERS_PATH + "/fragments/number/{instance_id}")
async def number_fragment(
    instance_id: str, request: Request, context: Context, session: DbSession, principal: NumberReader
) -> Response:
    """One number's card as it is now (404 for another tenant's or an unbound one)."""
    instance = await service.get_instance(session, principal.tenant_id, instance_id)
    if instance.status == InstanceStatus.UNBOUND.value:
        return Response(status_code=404)
    t = _texts(request, await queries.tenant_timezone(session, principal.tenant_id))
    card = card_of(instance, context.settings, utcnow())
    return page(request, "numbers/card.html", t, card=card, manages=_manages(principal), **_names())


@router.post(NUMBERS_PATH + "/fragments/qr/{instance_id}")
async def qr_fragment(
    instance_id: str, request: Request, context: Context, session: DbSession, principal: NumberWriter
) -> Response:
    """Ask the gateway for the number's QR code (admins): the code to scan while connecting, or
    "connected" once the phone is linked. Asked again for a fresh code, as gateways rotate it."""
    result = await gateway.connect_number(context, principal.tenant_id, instance_id)
    t = _texts(request, await queries.tenant_timezone(session, principal.tenant_id))
    challenge = result.challenge
    return page(
        request,
        "numbers/qr.html",
        t,
        instance_id=instance_id,
        state=challenge.state.value,
        qr=qr_markup(challenge),
        pairing_code=challenge.pairing_code,
    )


def _names() -> dict[str, Any]:
    return {
        "PROVIDER_NAMES": {name.value: label for name, label in PROVIDER_NAMES.items()},
        "CONNECTION_NAMES": CONNECTION_NAMES,
        "NUMBER_STATUS_NAMES": STATUS_NAMES,
        "HEALTH_NAMES": HEALTH_NAMES,
    }
