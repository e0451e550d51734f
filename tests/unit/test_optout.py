"""Opt-out keywords match the whole message only, folding case, accents and end punctuation."""

from __future__ import annotations

import pytest

from messaging_whatsapp.consent.optout import optout_keyword, optout_payload_keyword


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("SAIR", "sair"),
        ("Sair!", "sair"),
        ("  parar.  ", "parar"),
        ("não quero", "nao quero"),
        ("NÃO   QUERO!!", "nao quero"),
        ("Stop", "stop"),
        ("cancelar", "cancelar"),
        ("Remover?", "remover"),
    ],
)
def test_keywords_match(text: str, keyword: str) -> None:
    assert optout_keyword(text) == keyword


@pytest.mark.parametrize(
    "text", ["não quero perder a promoção", "quero sair do grupo", "stopped", "", None, "parar de fumar"]
)
def test_sentences_do_not_match(text: str | None) -> None:
    assert optout_keyword(text) is None


def test_quick_reply_payloads() -> None:
    assert optout_payload_keyword("PARAR_PROMOCOES") == "parar"
    assert optout_payload_keyword("STOP") == "stop"
    assert optout_payload_keyword("SIM_QUERO") is None
    assert optout_payload_keyword("PARARX") is None
