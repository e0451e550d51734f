"""Intents (seed 001): what a customer's message asks for, from its words or the button it tapped.

A tenant's list maps each intent to keywords and to reply-button payloads; a tenant that never set
one uses seed 001's. Keywords match as whole words (or runs of words) after folding case and
accents: "Qual o preço?" is create_quote, "preçário" is nothing. A button payload matches exactly
(the default buttons' ids are the intent names themselves).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

# Seed 001's intents, in the order they are tried.
SEED_INTENTS: tuple[dict[str, Any], ...] = (
    {"name": "create_quote", "keywords": ["cotacao", "orcamento", "preco", "valor"], "button_payloads": []},
    {"name": "order_status", "keywords": ["status", "pedido", "entrega", "rastrear"], "button_payloads": []},
    {"name": "talk_to_human", "keywords": ["atendente", "humano", "ajuda", "suporte"], "button_payloads": []},
)
TALK_TO_HUMAN = "talk_to_human"

_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Case and accents folded ("Preço" -> "preco")."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return text.casefold()


def words(text: str) -> tuple[str, ...]:
    """The folded words of a text, in order."""
    return tuple(_WORD.findall(fold(text)))


def has_phrase(text_words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """Whether the words hold the phrase as a run of whole words."""
    if not phrase:
        return False
    size = len(phrase)
    return any(text_words[i : i + size] == phrase for i in range(len(text_words) - size + 1))


@dataclass(frozen=True, slots=True)
class Intent:
    """One intent of a tenant: its name, its keywords (folded, as word runs) and its payloads."""

    name: str
    keywords: tuple[tuple[str, ...], ...]
    button_payloads: frozenset[str]

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Intent:
        """An intent from its stored (or API) form."""
        return cls(
            name=raw["name"],
            keywords=tuple(w for w in (words(k) for k in raw.get("keywords", [])) if w),
            # The default buttons' ids are the intent names: a tap on one is that intent.
            button_payloads=frozenset([raw["name"], *raw.get("button_payloads", [])]),
        )


@dataclass(frozen=True, slots=True)
class Detected:
    """An intent found in a message, and how: `button` (its payload) or `keyword` (its words)."""

    intent: str
    source: str


def detect(intents: list[Intent], text: str | None, button_payload: str | None) -> Detected | None:
    """The message's intent: a button's payload first (the customer chose it), then the first
    intent, in the list's order, one of whose keywords the text holds."""
    if button_payload:
        for intent in intents:
            if button_payload in intent.button_payloads:
                return Detected(intent.name, "button")
    if not text:
        return None
    found = words(text)
    for intent in intents:
        if any(has_phrase(found, keyword) for keyword in intent.keywords):
            return Detected(intent.name, "keyword")
    return None
