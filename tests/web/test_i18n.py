"""Every string the pages show has its Portuguese; the language follows the user's choice, then the
browser's; dates are in the tenant's time zone, in each language's format."""

from __future__ import annotations

import importlib
import pkgutil
import re
from datetime import UTC, datetime, timedelta

from starlette.requests import Request

from messaging_whatsapp import web
from messaging_whatsapp.web import i18n, render
from messaging_whatsapp.web.i18n import ENGLISH, PORTUGUESE, PORTUGUESE_TEXTS, Texts, choose_language

CALLS = re.compile(r"""\bt\(\s*(?:"([^"]+)"|'([^']+)')""")
LABELS = re.compile(r"""\("[a-z_]+", "([A-Z][^"]+)"\)""")
# The navigation's items: (path, icon, label, role).
NAV_LABELS = re.compile(r'"i-[a-z-]+", "([A-Z][^"]+)"')
# Translated from data: roles, ticket statuses and close reasons.
DATA_KEYS = {
    "admin",
    "supervisor",
    "agent",
    "open",
    "closed",
    "manual",
    "sale",
    "lost",
    "inactivity",
    "follow_up_exhausted",
    "follow_up",
}


def _used() -> set[str]:
    used = set(DATA_KEYS)
    for module in pkgutil.iter_modules(web.__path__):
        loaded = importlib.import_module(f"messaging_whatsapp.web.{module.name}")
        used |= set(getattr(loaded, "SCRIPT_TEXTS", ()))
    used |= (
        set(render.TYPE_NAMES.values())
        | set(render.STATUS_NAMES.values())
        | set(render.SENDER_NAMES.values())
    )
    for template in render.TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        used |= {a or b for a, b in CALLS.findall(text)}
        used |= set(LABELS.findall(text)) | set(NAV_LABELS.findall(text))
    return used


def test_every_string_the_pages_show_has_its_portuguese() -> None:
    used = _used()
    assert len(used) > 80
    assert sorted(used - PORTUGUESE_TEXTS.keys()) == []


def test_one_english_string_has_one_translation_in_every_area() -> None:
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for area, catalog in i18n.CATALOGS.items():
        for text, translation in catalog.items():
            first = seen.setdefault(text, (area, translation))
            if first[1] != translation:
                clashes.append((text, first, (area, translation)))
    assert clashes == []


def _request(headers: dict[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "headers": raw, "method": "GET", "path": "/"})


def test_the_users_choice_wins_then_the_browsers_languages_in_order() -> None:
    assert choose_language(_request({})) == PORTUGUESE
    assert choose_language(_request({"accept-language": "en-US,en;q=0.9"})) == ENGLISH
    assert choose_language(_request({"accept-language": "de-DE,en;q=0.5,pt-BR;q=0.8"})) == PORTUGUESE
    assert choose_language(_request({"accept-language": "fr;q=1, de;q=0.9"})) == PORTUGUESE
    chosen = {"accept-language": "en-US", "cookie": f"{i18n.LANG_COOKIE}=pt-BR"}
    assert choose_language(_request(chosen)) == PORTUGUESE
    assert choose_language(_request({"cookie": f"{i18n.LANG_COOKIE}=xx"})) == PORTUGUESE


def test_times_are_the_tenants_in_each_languages_format() -> None:
    moment = datetime(2026, 3, 9, 2, 30, tzinfo=UTC)  # 23:30 the day before in São Paulo
    portuguese = Texts(PORTUGUESE, "America/Sao_Paulo")
    english = Texts(ENGLISH, "America/Sao_Paulo")
    assert portuguese.clock(moment) == "23:30"
    assert english.clock(moment) == "11:30 PM"
    assert portuguese.date_time(moment) == "8 mar 2026, 23:30"
    assert english.date_time(moment) == "Mar 8, 2026, 11:30 PM"
    assert portuguese.day_label(portuguese.local(moment).date()) == "8 de março de 2026"
    assert english.day_label(english.local(moment).date()) == "March 8, 2026"
    assert portuguese.short_date(portuguese.local(moment).date()) == "08/03/2026"
    now = datetime.now(UTC)
    assert portuguese.day_label(portuguese.local(now).date()) == "Hoje"
    assert english.when(now) == english.clock(now)
    assert english.when(now - timedelta(days=1)) == "Yesterday"
    assert Texts(ENGLISH, "Asia/Tokyo").clock(moment) == "11:30 AM"
