"""Opt-out keywords (seeds 000 and 001, DESIGN section 9).

A message opts out only when the whole message is a keyword after trimming, folding case and
accents and dropping end punctuation: "Sair!" and "não quero" match, "não quero perder a promoção"
does not. A quick-reply payload also matches when it starts with a keyword ("PARAR_PROMOCOES").
"""

from __future__ import annotations

import re
import unicodedata

OPTOUT_KEYWORDS = frozenset({"stop", "sair", "parar", "cancelar", "remover", "nao quero"})

_END_PUNCTUATION = re.compile(r"[\s.!?,;:…'\"()\[\]]+$")
_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Trim, fold case and accents, drop end punctuation, collapse inner spaces."""
    if not text.isascii():  # ASCII has no accents to fold (most messages: skip the per-character pass)
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = _SPACES.sub(" ", text.casefold().strip())
    return _END_PUNCTUATION.sub("", folded)


def optout_keyword(text: str | None) -> str | None:
    """The keyword the whole message amounts to, or None."""
    if not text:
        return None
    normalised = normalise_text(text)
    return normalised if normalised in OPTOUT_KEYWORDS else None


def optout_payload_keyword(payload: str | None) -> str | None:
    """The keyword a quick-reply payload starts with ("PARAR_PROMOCOES" -> "parar"), or None."""
    if not payload:
        return None
    words = normalise_text(payload.replace("_", " ").replace("-", " "))
    for keyword in OPTOUT_KEYWORDS:
        if words == keyword or words.startswith(keyword + " "):
            return keyword
    return None
